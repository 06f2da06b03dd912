//! `import` and `export` through a running service's HTTP API (`--url`, `--api-key`), so that
//! they work while the service holds an embedded store: the service does the work, the command
//! streams the file up or the contacts down. The API key decides the workspace.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use futures_util::StreamExt;
use qwry_contacts::service::{ImportFormat, ImportOptions};
use serde_json::Value;

use super::import_progress::{RowProgress, wait_for_index};

/// A running service and the key to call it with.
pub struct RemoteService {
    base: url::Url,
    client: reqwest::Client,
}

impl RemoteService {
    /// The service at `url` (e.g. `http://127.0.0.1:8080`), called with `api_key`.
    pub fn new(url: &str, api_key: &str) -> anyhow::Result<Self> {
        let base = url::Url::parse(url).with_context(|| format!("--url `{url}` is not a URL"))?;
        let mut headers = reqwest::header::HeaderMap::new();
        let mut bearer = reqwest::header::HeaderValue::from_str(&format!("Bearer {api_key}"))
            .context("--api-key holds characters a header cannot carry")?;
        bearer.set_sensitive(true);
        headers.insert(reqwest::header::AUTHORIZATION, bearer);
        let client = reqwest::Client::builder()
            .default_headers(headers)
            .build()
            .context("HTTP client")?;
        Ok(Self { base, client })
    }

    fn endpoint(&self, path: &str) -> anyhow::Result<url::Url> {
        self.base
            .join(path)
            .with_context(|| format!("cannot join `{path}` to --url"))
    }

    /// Streams `file` to `POST /v1/contacts/import`, with the running job's rows as progress
    /// and then the index's; prints the report as the local import does.
    pub async fn import(&self, file: &Path, options: ImportOptions) -> anyhow::Result<ExitCode> {
        let input = tokio::fs::File::open(file)
            .await
            .with_context(|| format!("cannot open `{}`", file.display()))?;
        let mut url = self.endpoint("/v1/contacts/import")?;
        url.query_pairs_mut()
            .append_pair(
                "format",
                match options.format {
                    ImportFormat::Ndjson => "ndjson",
                    ImportFormat::Csv => "csv",
                },
            )
            .append_pair("matchBy", options.match_by.as_str())
            .append_pair("dryRun", if options.dry_run { "true" } else { "false" });
        let size = input.metadata().await.map(|meta| meta.len()).unwrap_or(0);
        let mut progress = RowProgress::importing(size);
        let sending = self
            .client
            .post(url)
            .body(reqwest::Body::from(input))
            .send();
        let response = progress
            .follow(sending, async || self.running_import_rows().await)
            .await
            .context("the service did not answer")?;
        let report: Value = answer(response).await?;
        let count = |name: &str| report[name].as_u64().unwrap_or(0);
        progress.rows_done(count("processed"));
        progress.finish();
        let written = count("created") + count("updated");
        if report["dryRun"] != true && written > 0 {
            // A key that may not read the index's status gives up on the wait, quietly.
            let _ = wait_for_index(written, async || {
                let data = self
                    .graphql("{ indexStatus { pendingChanges pendingContacts } }")
                    .await?;
                let count = |name: &str| data["indexStatus"][name].as_u64().unwrap_or(0);
                anyhow::Ok((count("pendingChanges"), count("pendingContacts")))
            })
            .await;
        }
        let verb = if report["dryRun"] == true {
            "would be "
        } else {
            ""
        };
        println!(
            "{} rows: {} {verb}created, {} {verb}updated, {} unchanged, {} failed, {} conflicts",
            count("processed"),
            count("created"),
            count("updated"),
            count("unchanged"),
            count("failed"),
            count("conflicts"),
        );
        let errors = report["errors"].as_array().into_iter().flatten();
        let conflicts = report["firstConflicts"].as_array().into_iter().flatten();
        for error in errors.chain(conflicts) {
            eprintln!(
                "line {}: {}: {}",
                error["line"],
                error["code"].as_str().unwrap_or(""),
                error["message"].as_str().unwrap_or("")
            );
        }
        if let Some(message) = report["message"].as_str() {
            eprintln!("import stopped: {message}");
            return Ok(ExitCode::FAILURE);
        }
        Ok(if count("failed") > 0 {
            ExitCode::from(2)
        } else {
            ExitCode::SUCCESS
        })
    }

    /// The rows the running import has settled (the one furthest along when several run), if
    /// the key may read import jobs.
    async fn running_import_rows(&self) -> Option<u64> {
        let data = self
            .graphql("{ importJobs { status processed } }")
            .await
            .ok()?;
        data["importJobs"]
            .as_array()?
            .iter()
            .filter(|job| job["status"] == "RUNNING")
            .filter_map(|job| job["processed"].as_u64())
            .max()
    }

    /// The `data` of `query` posted to `/graphql`; its first error otherwise.
    async fn graphql(&self, query: &str) -> anyhow::Result<Value> {
        let response = self
            .client
            .post(self.endpoint("/graphql")?)
            .json(&serde_json::json!({ "query": query }))
            .send()
            .await
            .context("the service did not answer")?;
        let body = answer(response).await?;
        if let Some(error) = body["errors"].get(0) {
            anyhow::bail!("{}", error["message"].as_str().unwrap_or("GraphQL error"));
        }
        Ok(body["data"].clone())
    }

    /// Streams `GET /v1/contacts/export` to `output` (standard output without it).
    pub async fn export(
        &self,
        segment: Option<&str>,
        after: Option<&str>,
        output: Option<&PathBuf>,
    ) -> anyhow::Result<ExitCode> {
        let mut url = self.endpoint("/v1/contacts/export")?;
        if let Some(segment) = segment {
            url.query_pairs_mut().append_pair("segment", segment);
        }
        if let Some(after) = after {
            url.query_pairs_mut().append_pair("after", after);
        }
        let response = self
            .client
            .get(url)
            .send()
            .await
            .context("the service did not answer")?;
        let response = success(response).await?;
        let mut sink: Box<dyn Write> = match output {
            Some(path) => Box::new(std::io::BufWriter::new(
                std::fs::File::create(path)
                    .with_context(|| format!("cannot create `{}`", path.display()))?,
            )),
            None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
        };
        let mut body = response.bytes_stream();
        while let Some(chunk) = body.next().await {
            sink.write_all(&chunk.context("the export stopped")?)?;
        }
        sink.flush()?;
        Ok(ExitCode::SUCCESS)
    }
}

/// The response when it succeeded; its error (code and message) otherwise.
async fn success(response: reqwest::Response) -> anyhow::Result<reqwest::Response> {
    if response.status().is_success() {
        return Ok(response);
    }
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    let error = &body["errors"][0];
    anyhow::bail!(
        "the service answered {status}: {} {}",
        error["extensions"]["code"].as_str().unwrap_or(""),
        error["message"].as_str().unwrap_or("")
    )
}

/// The JSON of a successful response.
async fn answer(response: reqwest::Response) -> anyhow::Result<Value> {
    success(response)
        .await?
        .json()
        .await
        .context("the service's answer is not JSON")
}
