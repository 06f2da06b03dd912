// The qwry-contacts console: plain JavaScript, no build step, no dependencies. It signs in with
// an API key (kept in this tab's sessionStorage, shared with GraphiQL at /graphql), asks the API
// what the key may do (`viewer`) and shows only the pages and actions its scopes allow. Every
// read and write goes through the public GraphQL API or the bulk import, as any client's would.
(function () {
  "use strict";

  var KEY_STORAGE = "qwry-api-key";
  /// How long the segment editor waits after a keystroke before checking the text.
  var TYPING_PAUSE_MS = 120;
  var PREVIEW_PAGE = 10;
  var BUILTIN_COLUMNS = [
    // [GraphQL field (a field policy names it so too), label]
    ["externalId", "External id"],
    ["email", "Email"],
    ["name", "Name"],
    ["phone", "Phone"],
    ["company", "Company"],
    ["accountRef", "Account ref"],
    ["lastSeenAt", "Last seen"],
  ];

  var session = { key: null, viewer: null };
  var main = document.getElementById("main");

  // ---- DOM ---------------------------------------------------------------------------------

  /** Builds an element: h("a", {href: "#"}, "text", child, ...). */
  function h(tag, props) {
    var element = document.createElement(tag);
    Object.keys(props || {}).forEach(function (name) {
      var value = props[name];
      if (value === undefined || value === null || value === false) return;
      if (name.slice(0, 2) === "on") element.addEventListener(name.slice(2), value);
      else if (name === "className") element.className = value;
      else if (name === "text") element.textContent = value;
      else if (name === "value") element.value = value;
      else if (name === "checked") element.checked = !!value;
      else element.setAttribute(name, value === true ? "" : value);
    });
    for (var i = 2; i < arguments.length; i++) append(element, arguments[i]);
    return element;
  }

  function append(parent, child) {
    if (child === undefined || child === null || child === false) return;
    if (Array.isArray(child)) child.forEach(function (c) { append(parent, c); });
    else parent.appendChild(typeof child === "object" ? child : document.createTextNode(String(child)));
  }

  function replace(parent) {
    while (parent.firstChild) parent.removeChild(parent.firstChild);
    for (var i = 1; i < arguments.length; i++) append(parent, arguments[i]);
    return parent;
  }

  function formatCount(n) {
    return Number(n).toLocaleString("en-US");
  }

  function plural(n, one, many) {
    return formatCount(n) + " " + (n === 1 ? one : many);
  }

  /** An RFC 3339 instant as the API writes them (`2026-12-03T19:48:44.5+00:00`). */
  var INSTANT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

  /** A value as written: numbers as given (`9`, not `9.0`), lists joined, instants as times. */
  function formatValue(value) {
    if (value === null || value === undefined) return "—";
    if (Array.isArray(value)) return value.join(", ");
    if (typeof value === "object") return JSON.stringify(value);
    if (typeof value === "string" && INSTANT.test(value)) return formatTime(value);
    return String(value);
  }

  /** A value as an element: instants as <time> with the UTC instant on hover. */
  function valueNode(value) {
    if (typeof value === "string" && INSTANT.test(value)) return timeNode(value);
    return formatValue(value);
  }

  /** An instant in the browser's locale and time zone, one format everywhere. */
  function formatTime(value) {
    if (!value) return "—";
    var at = new Date(value);
    if (isNaN(at.getTime())) return value;
    return at.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
  }

  /** `formatTime` as a <time> element whose title is the UTC instant. */
  function timeNode(value) {
    var at = new Date(value);
    if (!value || isNaN(at.getTime())) return formatTime(value);
    return h("time", { datetime: at.toISOString(), title: at.toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC").replace(/Z$/, " UTC") }, formatTime(value));
  }

  /** API wording a marketer should not need: named where to do it in the console instead. */
  var PLAIN_WORDS = [
    [/declare the attribute with `defineAttribute`/g, "declare it on the Attributes page"],
    [/declare the purpose with `defineConsentPurpose`/g, "ask an admin to declare the purpose"],
    [/`defineAttribute`/g, "the Attributes page"],
  ];

  function plainWords(text) {
    return PLAIN_WORDS.reduce(function (said, rule) { return said.replace(rule[0], rule[1]); }, text || "");
  }

  /** An error in words: the message, without the API's code. */
  function errorText(error) {
    return plainWords(error.message);
  }

  /** An error as a red line (`tag`: "span" inline, "p" as a block). */
  function failure(error, tag) {
    return h(tag || "span", { className: "error" }, errorText(error));
  }

  /** Runs `task` after the caller stops calling for `ms`. */
  function debounce(ms, task) {
    var timer = null;
    return function () {
      clearTimeout(timer);
      timer = setTimeout(task, ms);
    };
  }

  // ---- API ---------------------------------------------------------------------------------

  function ApiError(message, code) {
    this.message = message;
    this.code = code || null;
  }

  /** The first error of a GraphQL (or bulk endpoint) answer body, or null. */
  function firstError(body) {
    if (!body || !body.errors || !body.errors.length) return null;
    var first = body.errors[0];
    return new ApiError(first.message, first.extensions && first.extensions.code);
  }

  /** Runs a GraphQL operation with the session's key; rejects with the first error. */
  function gql(query, variables, key) {
    return fetch("/graphql", {
      method: "POST",
      headers: {
        "content-type": "application/json",
        accept: "application/json",
        authorization: "Bearer " + (key || session.key),
      },
      body: JSON.stringify({ query: query, variables: variables || {} }),
    }).then(function (response) {
      return response.json().catch(function () {
        throw new ApiError("the server answered " + response.status, "HTTP_" + response.status);
      });
    }).then(function (body) {
      var error = firstError(body);
      if (error) throw error;
      return body.data;
    });
  }

  /** Whether the key has `scope` (`admin` implies every scope). */
  function can(scope) {
    var scopes = session.viewer ? session.viewer.scopes : [];
    return scopes.indexOf(scope) >= 0 || scopes.indexOf("admin") >= 0;
  }

  /** Whether the key's field policy lets it read built-in field `name` (its GraphQL name). */
  function readsField(name) {
    var fields = session.viewer.fieldPolicy.fields;
    return fields === null || fields.indexOf(name) >= 0;
  }

  function readsAttribute(definition) {
    var names = session.viewer.fieldPolicy.attributes;
    var approved = names === null || names.indexOf(definition.name) >= 0;
    return approved && (!definition.sensitive || can("pii:read"));
  }

  var attributeRegistry = null;
  /** The attribute registry (read once per sign-in). */
  function attributes() {
    if (!attributeRegistry) {
      attributeRegistry = gql("{ attributes { name type description mergeRule sensitive createdAt } }")
        .then(function (data) { return data.attributes; })
        .catch(function () { attributeRegistry = null; return []; });
    }
    return attributeRegistry;
  }

  // ---- Pages and routing -------------------------------------------------------------------

  var PAGES = [
    { id: "segments", title: "Segments", needs: ["segments:read"], render: segmentsPage },
    { id: "explain", title: "Explain", needs: ["contacts:read", "segments:read"], render: explainPage },
    { id: "contacts", title: "Contacts", needs: ["contacts:read"], render: contactsPage },
    { id: "attributes", title: "Attributes", needs: ["contacts:read"], render: attributesPage },
    { id: "imports", title: "Imports", needs: ["contacts:write"], render: importsPage },
  ];

  function allowed(page) {
    return page.needs.every(can);
  }

  /** `#/segments/active?x=1` → {page: "segments", rest: "active", params: {x: "1"}}. */
  function parseHash() {
    var hash = location.hash.replace(/^#\/?/, "");
    var query = "";
    var q = hash.indexOf("?");
    if (q >= 0) { query = hash.slice(q + 1); hash = hash.slice(0, q); }
    var parts = hash.split("/");
    var params = {};
    new URLSearchParams(query).forEach(function (value, name) { params[name] = value; });
    return {
      page: decodeURIComponent(parts[0] || ""),
      rest: decodeURIComponent(parts.slice(1).join("/")),
      params: params,
    };
  }

  function route() {
    if (!session.viewer) return signInPage();
    var where = parseHash();
    var page = PAGES.filter(function (p) { return p.id === where.page && allowed(p); })[0];
    if (!page) {
      var first = PAGES.filter(allowed)[0];
      if (!first) {
        replace(main, h("p", { className: "muted", id: "no-pages" },
          "This key's scopes (" + session.viewer.scopes.join(", ") + ") open no console page. ",
          "Its API is at ", h("a", { href: "/graphql" }, "GraphiQL"), "."));
        renderNav(null);
        return;
      }
      location.replace("#/" + first.id);
      return;
    }
    renderNav(page.id);
    replace(main);
    page.render(where.rest, where.params);
  }

  function renderNav(active) {
    var nav = document.getElementById("nav");
    replace(nav, PAGES.filter(allowed).map(function (page) {
      return h("a", { href: "#/" + page.id, "data-page": page.id, className: page.id === active ? "active" : null }, page.title);
    }), h("a", { href: "/graphql", "data-page": "graphiql" }, "GraphiQL"));
    document.getElementById("sign-out").hidden = false;
    var scopes = can("admin") ? "admin" : session.viewer.scopes.join(", ");
    replace(document.getElementById("who"), h("span", { title: "key " + session.viewer.keyId + ": " + session.viewer.scopes.join(", ") }, session.viewer.keyName + " · " + scopes));
  }

  // ---- Sign-in -----------------------------------------------------------------------------

  var VIEWER = "{ viewer { keyId keyName grantedScopes fieldPolicy { fields attributes } } }";

  function signIn(key) {
    return gql(VIEWER, {}, key).then(function (data) {
      session.key = key;
      session.viewer = data.viewer;
      // CONTACTS_READ -> contacts:read, the spelling the pages and messages use.
      session.viewer.scopes = data.viewer.grantedScopes.map(function (scope) {
        return scope.toLowerCase().replace("_", ":");
      });
      attributeRegistry = null;
      keyNames = null;
      sessionStorage.setItem(KEY_STORAGE, key);
    });
  }

  function signOut() {
    sessionStorage.removeItem(KEY_STORAGE);
    session.key = null;
    session.viewer = null;
    attributeRegistry = null;
    replace(document.getElementById("nav"));
    replace(document.getElementById("who"));
    document.getElementById("sign-out").hidden = true;
    location.hash = "#/";
    signInPage();
  }

  function signInPage() {
    var key = h("input", { id: "signin-key", type: "password", placeholder: "API key", autocomplete: "off", spellcheck: "false", required: true });
    var problem = h("p", { id: "signin-error", className: "error", role: "alert" });
    var form = h("form", { id: "signin-form", className: "panel stack", onsubmit: function (event) {
      event.preventDefault();
      replace(problem);
      signIn(key.value.trim()).then(route, function (error) {
        replace(problem, error.code === "UNAUTHENTICATED" ? "That key is not valid (or was revoked)." : errorText(error));
      });
    } },
      h("h1", {}, "Sign in"),
      h("p", { className: "muted" }, "With an API key of your workspace. The key stays in this tab only and is forgotten when it closes; the console shows what its scopes allow."),
      key,
      h("div", { className: "row" }, h("button", { type: "submit", className: "primary" }, "Sign in")),
      problem);
    replace(main, h("div", { id: "signin" }, form));
    key.focus();
  }

  // ---- Segment editor ----------------------------------------------------------------------

  /** Maps byte offsets of UTF-8 `text` (the API's spans) to string indices. */
  function byteToIndex(text, byte) {
    var bytes = 0;
    for (var i = 0; i < text.length; i++) {
      if (bytes >= byte) return i;
      var code = text.codePointAt(i);
      bytes += code < 0x80 ? 1 : code < 0x800 ? 2 : code < 0x10000 ? 3 : 4;
      if (code >= 0x10000) i++;
    }
    return text.length;
  }

  /** The text with each diagnostic's span wrapped in a <mark>, for the editor's backdrop. */
  function underlined(text, errors) {
    var spans = errors.map(function (e) {
      return { start: byteToIndex(text, e.start), end: byteToIndex(text, e.end) };
    }).sort(function (a, b) { return a.start - b.start; });
    var nodes = [];
    var at = 0;
    spans.forEach(function (span) {
      if (span.start < at) return; // overlapping spans: the first one is marked
      nodes.push(text.slice(at, span.start));
      var marked = text.slice(span.start, span.end);
      nodes.push(h("mark", { className: marked ? null : "point" }, marked));
      at = span.end;
    });
    nodes.push(text.slice(at));
    nodes.push("\n"); // keeps a last empty line as tall as the textarea's
    return nodes;
  }

  /** The name a diagnostic suggests instead (`did you mean \`x\``), if any. */
  function suggestion(error) {
    var found = /did you mean `([^`]+)`/.exec(error.message + " " + (error.hint || ""));
    return found ? found[1] : null;
  }

  var SEGMENT_FIELDS = "slug name description text references { nodes { slug name } } referencedBy { nodes { slug name } }";

  function segmentsPage(slug) {
    var list = h("ul", { id: "segment-list" });
    var editorPane = h("section", { id: "segment-editor", className: "stack" });
    replace(main, h("div", { className: "layout" },
      h("aside", { className: "stack" },
        h("div", { className: "row" }, h("strong", {}, "Saved segments"),
          can("segments:write") ? h("a", { href: "#/segments", id: "segment-new" }, "+ new") : null),
        list),
      editorPane));
    loadSegmentList(list, slug);
    if (slug) {
      gql("query($slug: String!) { segment(slug: $slug) { " + SEGMENT_FIELDS + " } }", { slug: slug })
        .then(function (data) { segmentEditor(editorPane, data.segment); },
          function (error) { replace(editorPane, failure(error, "p")); });
    } else {
      segmentEditor(editorPane, null);
    }
  }

  function loadSegmentList(list, active) {
    gql("{ segments(first: 100) { nodes { slug name count } } }").then(function (data) {
      if (!data.segments.nodes.length) return replace(list, h("li", { className: "muted" }, "None yet."));
      replace(list, data.segments.nodes.map(function (segment) {
        return h("li", {
          className: "segment-item" + (segment.slug === active ? " active" : ""),
          "data-slug": segment.slug,
          onclick: function () { location.hash = "#/segments/" + encodeURIComponent(segment.slug); },
        }, h("span", {}, segment.name, h("br"), h("small", { className: "muted mono" }, segment.slug)),
          h("span", { className: "count" }, formatCount(segment.count)));
      }));
    }, function (error) { replace(list, failure(error, "li")); });
  }

  function segmentEditor(pane, saved) {
    var writable = can("segments:write");
    var slug = h("input", { id: "segment-slug", placeholder: "active-trials", value: saved ? saved.slug : "", readonly: !!saved || !writable, spellcheck: "false" });
    var name = h("input", { id: "segment-name", placeholder: "Active trials", value: saved ? saved.name : "", readonly: !writable });
    var description = h("input", { id: "segment-description", placeholder: "What it is for", value: saved && saved.description ? saved.description : "", readonly: !writable, size: 40 });
    var text = h("textarea", { id: "segment-text", spellcheck: "false", autocomplete: "off", placeholder: "plan = \"pro\" and last_seen_at within 30d", "aria-label": "Segment text" });
    text.value = saved ? saved.text : "";
    var backdrop = h("div", { className: "backdrop", id: "segment-backdrop", "aria-hidden": "true" });
    var count = h("span", { id: "segment-count", role: "status" });
    var canonical = h("div", { id: "segment-canonical", className: "canonical" });
    var diagnostics = h("ul", { id: "segment-diagnostics" });
    var status = h("span", { id: "segment-status", role: "status" });
    var preview = h("section", { id: "segment-preview" });
    var lastValid = null;
    var problems = 1; // until the text is checked
    var saveButton = null;

    /** Save is open once the text has no problem and the segment has a slug and a name. */
    function allowSave() {
      if (!saveButton) return;
      var missing = !slug.value.trim() || !name.value.trim();
      saveButton.disabled = problems > 0 || missing || !text.value.trim();
      saveButton.title = problems > 0 ? "Fix the problems in the text first" : missing ? "Give the segment a name" : "";
    }

    // A new segment's slug follows its name until the slug is typed in.
    var slugTyped = !!saved;
    slug.addEventListener("input", function () { slugTyped = true; allowSave(); });
    name.addEventListener("input", function () {
      if (!slugTyped) slug.value = slugOf(name.value);
      allowSave();
    });

    var validations = 0;
    function validate() {
      var mine = ++validations;
      var source = text.value;
      if (!source.trim()) {
        problems = 1;
        allowSave();
        lastValid = null;
        replace(backdrop, underlined(source, []));
        replace(count, "Type a segment to see how many contacts match.");
        replace(diagnostics);
        replace(canonical);
        replace(preview);
        return;
      }
      count.classList.add("stale");
      suggestValues();
      gql("query($text: String!) { validateSegment(text: $text) { valid canonical count errors { message errorCode start end hint } hints { message start end } } }", { text: source })
        .then(function (data) {
          if (mine !== validations) return; // a later keystroke already asked
          var result = data.validateSegment;
          count.classList.remove("stale");
          replace(backdrop, underlined(source, result.errors));
          replace(diagnostics, result.errors.map(function (error) { return diagnostic(error, source); }),
            result.hints.map(function (hint) { return diagnostic(hint, source, "advice"); }));
          replace(canonical, result.canonical && result.canonical !== source.trim() ? ["canonical: ", result.canonical] : null);
          problems = result.valid ? 0 : result.errors.length;
          allowSave();
          if (result.valid) {
            replace(count, plural(result.count, "contact matches", "contacts match"));
            count.setAttribute("data-count", result.count);
            lastValid = source;
            if (can("contacts:read")) showPreview(preview, source);
          } else {
            replace(count, plural(result.errors.length, "problem", "problems"));
            count.removeAttribute("data-count");
            replace(preview); // members of an earlier text would mislead
          }
        }, function (error) {
          if (mine !== validations) return;
          count.classList.remove("stale");
          replace(count, failure(error));
        });
    }

    /** Values of the field whose literal the caret is in, to complete it in one click. */
    var suggestions = h("div", { id: "segment-values", className: "row" });
    var lookups = 0;
    function suggestValues() {
      var mine = ++lookups;
      var before = text.value.slice(0, text.selectionStart);
      var typing = /([A-Za-z_][\w.]*)\s*(?:=|!=|in\s*\[[^\]]*|not\s+in\s*\[[^\]]*|has(?:\s+(?:any|all)\s*\[[^\]]*)?)\s*"([^"]*)$/.exec(before);
      if (!typing) return replace(suggestions);
      var field = typing[1].replace(/^attributes\./, "");
      var prefix = typing[2];
      var opened = before.length - prefix.length; // just after the opening quote
      gql("query($f: String!, $p: String!) { fieldValues(field: $f, prefix: $p, first: 8) { value count } }", { f: field, p: prefix })
        .then(function (data) {
          if (mine !== lookups) return;
          var values = data.fieldValues.filter(function (v) { return v.value !== prefix; });
          replace(suggestions, values.length ? [h("span", { className: "muted" }, field + ":")].concat(values.map(function (v) {
            return h("button", { type: "button", className: "value-suggestion", "data-value": v.value, onclick: function () {
              var after = text.value.slice(before.length);
              var closing = after.charAt(0) === '"' ? "" : '"';
              text.value = text.value.slice(0, opened) + v.value + closing + after;
              var caret = opened + v.value.length + 1;
              text.focus();
              text.setSelectionRange(caret, caret);
              replace(suggestions);
              validate();
            } }, v.value, h("span", { className: "muted" }, " " + formatCount(v.count)));
          })) : null);
        }, function () { if (mine === lookups) replace(suggestions); });
    }

    function diagnostic(error, source, kind) {
      var better = suggestion(error);
      var use = better && h("button", { type: "button", className: "apply-suggestion", onclick: function () {
        var start = byteToIndex(source, error.start);
        var end = byteToIndex(source, error.end);
        text.value = source.slice(0, start) + better + source.slice(end);
        text.focus();
        validate();
      } }, "Use ", h("code", {}, better));
      return h("li", { className: "diagnostic" + (kind ? " " + kind : "") },
        h("div", { "data-code": error.errorCode }, h("span", { className: "message" }, plainWords(error.message))),
        error.hint ? h("div", { className: "hint" }, plainWords(error.hint)) : null,
        use);
    }

    var onTyping = debounce(TYPING_PAUSE_MS, validate);
    text.addEventListener("input", function () {
      replace(backdrop, underlined(text.value, [])); // old marks would sit on new text
      count.classList.add("stale");
      problems = 1; // until this text is checked
      allowSave();
      onTyping();
    });
    text.addEventListener("scroll", function () { backdrop.scrollTop = text.scrollTop; });

    function save() {
      replace(status);
      var input = { slug: slug.value.trim(), name: name.value.trim(), description: description.value.trim() || null, text: text.value };
      gql("mutation($input: UpsertSegmentInput!) { upsertSegment(input: $input) { segment { slug } } }", { input: input })
        .then(function (data) {
          replace(status, h("span", { className: "ok" }, "Saved."));
          var target = "#/segments/" + encodeURIComponent(data.upsertSegment.segment.slug);
          if (location.hash !== target) location.hash = target;
          else loadSegmentList(document.getElementById("segment-list"), data.upsertSegment.segment.slug);
        }, function (error) { replace(status, failure(error)); });
    }

    var confirming = false;
    var remove = saved && writable && h("button", { type: "button", id: "segment-delete", className: "danger", onclick: function () {
      if (!confirming) {
        confirming = true;
        remove.textContent = "Delete “" + saved.slug + "”? Click again";
        return;
      }
      gql("mutation($slug: String!) { deleteSegment(input: { slug: $slug }) { deletedSlug } }", { slug: saved.slug })
        .then(function () { location.hash = "#/segments"; },
          function (error) { confirming = false; remove.textContent = "Delete"; replace(status, failure(error)); });
    } }, "Delete");

    replace(pane,
      h("h1", {}, saved ? saved.name : "New segment"),
      h("div", { className: "row" },
        h("label", {}, "Slug", slug), h("label", {}, "Name", name), h("label", {}, "Description", description)),
      h("div", { className: "editor" }, backdrop, text),
      suggestions,
      h("div", { className: "row" }, count,
        writable ? (saveButton = h("button", { type: "button", id: "segment-save", className: "primary", onclick: save, disabled: true }, saved ? "Save changes" : "Save")) : null,
        remove, status,
        saved && can("contacts:read") ? h("a", { href: "#/explain?slug=" + encodeURIComponent(saved.slug) }, "Explain a contact…") : null),
      canonical,
      diagnostics,
      saved ? references(saved) : null,
      saved ? historyPanel(saved.slug) : null,
      saved ? distributionPanel(saved.slug) : null,
      preview);
    validate();
  }

  /** Saved segment `slug`'s size at the end of each of its last 30 days, as columns. */
  function historyPanel(slug) {
    var chart = h("div", { id: "segment-history", className: "history", role: "img" });
    var summary = h("p", { className: "muted", id: "segment-history-summary" });
    gql("query($slug: String!) { segment(slug: $slug) { history(days: 30) { day members entered exited } } }", { slug: slug })
      .then(function (data) {
        var days = data.segment.history;
        var most = days.reduce(function (m, d) { return Math.max(m, d.members || 0); }, 0) || 1;
        var entered = days.reduce(function (n, d) { return n + d.entered; }, 0);
        var exited = days.reduce(function (n, d) { return n + d.exited; }, 0);
        chart.setAttribute("aria-label", "Size over the last 30 days, from " + formatCount(days[0].members || 0) + " to " + formatCount(days[days.length - 1].members || 0));
        replace(chart, days.map(function (d) {
          var column = h("span", { className: "column" + (d.members === null ? " before" : ""), "data-day": d.day, "data-members": d.members === null ? "" : d.members,
            title: d.day + ": " + (d.members === null ? "not saved yet" : formatCount(d.members) + " members") + " (+" + formatCount(d.entered) + " / −" + formatCount(d.exited) + ")" });
          // Through the CSSOM: the page's content policy refuses style attributes.
          column.style.height = (d.members === null ? 0 : Math.max(2, Math.round(100 * d.members / most))) + "%";
          return column;
        }));
        replace(summary, "Last 30 days: " + formatCount(entered) + " entered, " + formatCount(exited) + " left.");
      }, function (error) { replace(chart, failure(error, "p")); });
    return h("section", { className: "panel stack", id: "segment-history-panel" }, h("strong", {}, "Size, last 30 days"), chart, summary);
  }

  /** What the members of saved segment `slug` look like: their spread over a chosen field. */
  function distributionPanel(slug) {
    var field = h("select", { id: "distribution-field", "aria-label": "Members by" });
    var chart = h("div", { id: "distribution-chart", role: "figure", "aria-live": "polite" });
    var panel = h("section", { className: "panel stack", id: "segment-distribution" },
      h("div", { className: "row" }, h("strong", {}, "Members by"), field), chart);
    attributes().then(function (registry) {
      var choices = BUILTIN_COLUMNS.filter(function (c) { return readsField(c[0]); })
        .map(function (c) { return [c[0].replace(/[A-Z]/g, function (l) { return "_" + l.toLowerCase(); }), c[1]]; })
        .concat(registry.filter(function (a) { return readsAttribute(a) && !a.sensitive && a.type !== "BOOL"; })
          .map(function (a) { return [a.name, a.name]; }));
      replace(field, h("option", { value: "" }, "— choose a field —"), choices.map(function (c) { return h("option", { value: c[0] }, c[1]); }));
    });
    field.addEventListener("change", function () {
      if (!field.value) return replace(chart);
      chart.classList.add("stale");
      gql("query($s: String!, $f: String!) { segmentDistribution(segment: $s, field: $f, buckets: 10) { members missing values { value count } otherValues bars { low high count } } }",
        { s: "in segment " + JSON.stringify(slug), f: field.value })
        .then(function (data) {
          chart.classList.remove("stale");
          var d = data.segmentDistribution;
          var rows = d.values.length
            ? d.values.map(function (v) { return [v.value, v.count]; })
            : d.bars.map(function (b) { return [formatValue(b.low) + " – " + formatValue(b.high), b.count]; });
          if (d.otherValues) rows.push(["other values", d.otherValues]);
          if (d.missing) rows.push(["no value", d.missing]);
          var most = rows.reduce(function (m, r) { return Math.max(m, r[1]); }, 0) || 1;
          replace(chart, rows.length ? h("table", { className: "bars" }, h("tbody", {}, rows.map(function (r) {
            var bar = h("span", { className: "bar" });
            // Through the CSSOM: the page's content policy refuses style attributes.
            bar.style.width = Math.max(1, Math.round(100 * r[1] / most)) + "%";
            return h("tr", { "data-label": r[0] },
              h("th", { scope: "row" }, r[0]),
              h("td", { className: "bar-cell" }, bar),
              h("td", { className: "bar-count" }, formatCount(r[1])));
          }))) : h("p", { className: "muted" }, "No members."));
        }, function (error) { chart.classList.remove("stale"); replace(chart, failure(error, "p")); });
    });
    return panel;
  }

  /** `Pro plan (EU)!` → `pro-plan-eu`: a slug the API accepts, from a segment's name. */
  function slugOf(name) {
    return name.toLowerCase().normalize("NFKD").replace(/[\u0300-\u036f]/g, "")
      .replace(/[^a-z0-9]+/g, "-").replace(/^-+|-+$/g, "").slice(0, 64);
  }

  function references(saved) {
    function links(segments) {
      if (!segments.length) return h("span", { className: "muted" }, "none");
      return segments.map(function (s) {
        return h("a", { className: "tag", href: "#/segments/" + encodeURIComponent(s.slug) }, s.name + " (" + s.slug + ")");
      });
    }
    return h("div", { className: "panel", id: "segment-references" },
      h("div", {}, h("strong", {}, "Uses: "), links(saved.references.nodes)),
      h("div", { id: "segment-referenced-by" }, h("strong", {}, "Used by: "), links(saved.referencedBy.nodes)));
  }

  var previewColumns = null;

  /** The member preview: chosen columns, next and previous pages. */
  function showPreview(pane, text) {
    attributes().then(function (registry) {
      var builtins = BUILTIN_COLUMNS.filter(function (c) { return readsField(c[0]); });
      var readable = registry.filter(readsAttribute);
      if (!previewColumns) {
        previewColumns = builtins.slice(0, 3).map(function (c) { return c[0]; })
          .concat(readable.slice(0, 3).map(function (a) { return "attr:" + a.name; }));
      }
      var cursors = [null];
      var table = h("div", { id: "preview-table" });
      var pager = h("div", { className: "row" });

      function chooser() {
        var all = builtins.map(function (c) { return [c[0], c[1]]; })
          .concat(readable.map(function (a) { return ["attr:" + a.name, a.name]; }));
        return h("div", { id: "preview-columns", className: "row" }, h("span", { className: "muted" }, "Columns:"),
          all.map(function (column) {
            return h("label", {}, h("input", { type: "checkbox", value: column[0], checked: previewColumns.indexOf(column[0]) >= 0, onchange: function (event) {
              if (event.target.checked) previewColumns.push(column[0]);
              else previewColumns = previewColumns.filter(function (c) { return c !== column[0]; });
              load();
            } }), column[1]);
          }));
      }

      function load() {
        var after = cursors[cursors.length - 1];
        var fields = builtins.map(function (c) { return c[0]; }).filter(function (f) { return previewColumns.indexOf(f) >= 0; });
        var query = "query($text: String!, $after: String) { contacts(segment: $text, first: " + PREVIEW_PAGE +
          ", after: $after) { totalCount pageInfo { hasNextPage endCursor } nodes { id " + fields.join(" ") + " attributes } } }";
        gql(query, { text: text, after: after }).then(function (data) {
          var page = data.contacts;
          var columns = previewColumns.slice();
          var labels = {};
          BUILTIN_COLUMNS.forEach(function (c) { labels[c[0]] = c[1]; });
          replace(table, h("table", {},
            h("thead", {}, h("tr", {}, columns.map(function (c) { return h("th", {}, labels[c] || c.replace(/^attr:/, "")); }))),
            h("tbody", {}, page.nodes.map(function (contact) {
              return h("tr", { className: "clickable", "data-contact": contact.id, onclick: function () { location.hash = "#/contacts/" + encodeURIComponent(contact.id); } },
                columns.map(function (c) {
                  var value = c.indexOf("attr:") === 0 ? contact.attributes[c.slice(5)] : contact[c];
                  return h("td", {}, valueNode(value));
                }));
            }))));
          var first = (cursors.length - 1) * PREVIEW_PAGE;
          replace(pager,
            h("span", { className: "muted", id: "preview-range" }, page.nodes.length ? (first + 1) + "–" + (first + page.nodes.length) + " of " + formatCount(page.totalCount) : "No members."),
            h("button", { type: "button", id: "preview-previous", disabled: cursors.length < 2, onclick: function () { cursors.pop(); load(); } }, "Previous"),
            h("button", { type: "button", id: "preview-next", disabled: !page.pageInfo.hasNextPage, onclick: function () { cursors.push(page.pageInfo.endCursor); load(); } }, "Next"));
        }, function (error) { replace(table, failure(error, "p")); });
      }

      replace(pane, h("h2", {}, "Members"), chooser(), table, pager);
      load();
    });
  }

  // ---- Explain -----------------------------------------------------------------------------

  function explainPage(_rest, params) {
    var contact = h("input", { id: "explain-contact", placeholder: "contact id", "aria-label": "Contact id", value: params.contact || "", size: 36, spellcheck: "false" });
    var slug = h("select", { id: "explain-segment", "aria-label": "Saved segment" }, h("option", { value: "" }, "— saved segment —"));
    var text = h("input", { id: "explain-text", placeholder: "or segment text", "aria-label": "Segment text", value: params.segment || "", size: 50, spellcheck: "false" });
    var result = h("section", { id: "explain-result" });
    function run(event) {
      if (event) event.preventDefault();
      var variables = { contact: { id: contact.value.trim() }, of: slug.value ? { slug: slug.value } : { text: text.value } };
      gql("query($contact: ContactLookupInput!, $of: SegmentChoiceInput!) { explainMembership(contact: $contact, of: $of) { matched nodes { id parentId part text matched value } } }", variables)
        .then(function (data) { replace(result, explanation(data.explainMembership)); },
          function (error) { replace(result, failure(error, "p")); });
    }
    // The contact is picked by searching (name, email, phone, ids), or its id is pasted.
    var search = h("input", { id: "explain-search", type: "search", placeholder: "Find the contact: name, email, phone…", size: 36, spellcheck: "false", "aria-label": "Find the contact" });
    var matches = h("ul", { id: "explain-matches", className: "matches" });
    var searches = 0;
    search.addEventListener("input", debounce(TYPING_PAUSE_MS, function () {
      var mine = ++searches;
      var term = search.value.trim();
      if (!term) return replace(matches);
      gql("query($q: String!) { contacts(search: $q, first: 8) { nodes { id name email externalId } } }", { q: term }).then(function (data) {
        if (mine !== searches) return;
        replace(matches, data.contacts.nodes.length ? data.contacts.nodes.map(function (found) {
          return h("li", {}, h("button", { type: "button", className: "match", "data-contact": found.id, onclick: function () {
            contact.value = found.id;
            search.value = found.name || found.email || found.externalId || found.id;
            replace(matches);
            if (slug.value || text.value.trim()) run();
          } }, found.name || found.externalId || "Anonymous visitor", found.email ? h("span", { className: "muted" }, " " + found.email) : null));
        }) : h("li", { className: "muted" }, "No contact matches."));
      }, function (error) { replace(matches, failure(error, "li")); });
    }));
    replace(main,
      h("h1", {}, "Why is a contact in a segment, or not?"),
      h("div", { className: "stack" }, search, matches),
      h("form", { className: "row", id: "explain-form", onsubmit: run }, contact, slug, text, h("button", { type: "submit", className: "primary", id: "explain-run" }, "Explain")),
      result);
    gql("{ segments(first: 100) { nodes { slug name } } }").then(function (data) {
      data.segments.nodes.forEach(function (s) { append(slug, h("option", { value: s.slug }, s.name + " (" + s.slug + ")")); });
      if (params.slug) slug.value = params.slug;
      if (contact.value && (slug.value || text.value)) run();
    });
  }

  function explanation(explained) {
    var children = {};
    explained.nodes.forEach(function (node) {
      var parent = node.parentId === null ? "root" : node.parentId;
      (children[parent] = children[parent] || []).push(node);
    });
    function tree(parent) {
      var nodes = children[parent] || [];
      if (!nodes.length) return null;
      return h("ul", { className: "tree" }, nodes.map(function (node) {
        var kind = node.part.toLowerCase();
        return h("li", { className: "node " + (node.matched ? "matched" : "unmatched"), "data-kind": kind },
          h("div", { className: "line" },
            h("span", { className: "mark" }, node.matched ? "✓" : "✗"),
            kind === "condition" || kind === "segment" ? h("code", {}, node.text) : h("strong", {}, kind),
            kind === "condition" ? h("span", { className: "value" }, "value: " + formatValue(node.value)) : null),
          tree(node.id));
      }));
    }
    return [
      h("p", { id: "explain-verdict", className: explained.matched ? "ok" : "error" }, explained.matched ? "The contact is a member." : "The contact is not a member."),
      tree("root"),
    ];
  }

  // ---- Contacts ----------------------------------------------------------------------------

  var LOOKUPS = [
    ["id", "Contact id"], ["externalId", "External id"], ["EMAIL", "Email"], ["PHONE", "Phone"], ["ANONYMOUS_ID", "Anonymous id"],
  ];

  var CONTACT_FIELDS = "id externalId email name phone company accountRef attributes createdAt updatedAt createdBy updatedBy lastSeenAt firstSeenAt " +
    "identities(first: 100) { nodes { kind value provenance createdAt } } mergedFrom verification { verifiedAt method } segments(first: 100) { nodes { slug name } }";

  var LIST_PAGE = 20;
  var listColumns = null;
  /** What the contact list shows: the search text, the saved segment, the page's cursors. */
  var listState = { search: "", slug: "", cursors: [null] };

  function contactsPage(id) {
    var kind = h("select", { id: "lookup-kind", "aria-label": "Look up by" }, LOOKUPS.map(function (l) { return h("option", { value: l[0] }, l[1]); }));
    var value = h("input", { id: "lookup-value", placeholder: "value", size: 30, spellcheck: "false", "aria-label": "Value to look up" });
    var problem = h("span", { id: "lookup-error", className: "error" });
    var view = h("section", { id: "contact-view" });
    var lookup = h("form", { id: "lookup-form", className: "row", onsubmit: function (event) {
      event.preventDefault();
      replace(problem);
      lookUp(kind.value, value.value.trim()).then(function (found) {
        location.hash = "#/contacts/" + encodeURIComponent(found.id);
      }, function (error) { replace(problem, errorText(error)); });
    } }, kind, value, h("button", { type: "submit" }, "Look up"), problem);
    if (id) {
      var parts = id.split("/");
      replace(main, h("p", {}, h("a", { href: "#/contacts", id: "contacts-back" }, "← All contacts")), view);
      if (parts[0] === "new" && can("contacts:write")) contactEditor(view, null);
      else if (parts[1] === "edit" && can("contacts:write")) {
        gql("query($id: ID!) { contact(id: $id) { id externalId email name phone company accountRef attributes } }", { id: parts[0] })
          .then(function (data) { contactEditor(view, data.contact); }, function (error) { replace(view, failure(error, "p")); });
      } else showContact(view, parts[0]);
      return;
    }
    var list = h("section", { id: "contact-list" });
    replace(main,
      h("div", { className: "row spread" }, h("h1", {}, "Contacts"),
        can("contacts:write") ? h("a", { href: "#/contacts/new", id: "contact-new", className: "button" }, "+ New contact") : null),
      list,
      h("details", { className: "panel", id: "lookup" }, h("summary", {}, "Look up by id, external id, email, phone or visitor id"), lookup));
    contactList(list);
  }

  /** The contact list: search as you type, a saved segment as filter, columns, pages. */
  function contactList(pane) {
    var search = h("input", { id: "contact-search", type: "search", placeholder: "Search by name, email, phone or id", value: listState.search, size: 36, spellcheck: "false", "aria-label": "Search contacts" });
    var segment = h("select", { id: "contact-segment", "aria-label": "Only the members of" }, h("option", { value: "" }, "All contacts"));
    var chooser = h("div", { id: "contact-columns", className: "row" });
    var table = h("div", { id: "contact-table", className: "table-wrap" });
    var pager = h("div", { className: "row" });
    var loads = 0;

    attributes().then(function (registry) {
      var builtins = BUILTIN_COLUMNS.filter(function (c) { return readsField(c[0]); });
      var readable = registry.filter(readsAttribute);
      if (!listColumns) {
        listColumns = builtins.slice(0, 4).map(function (c) { return c[0]; })
          .concat(readable.slice(0, 2).map(function (a) { return "attr:" + a.name; }));
      }
      var all = builtins.map(function (c) { return [c[0], c[1]]; })
        .concat(readable.map(function (a) { return ["attr:" + a.name, a.name]; }));
      replace(chooser, h("span", { className: "muted" }, "Columns:"), all.map(function (column) {
        return h("label", {}, h("input", { type: "checkbox", value: column[0], checked: listColumns.indexOf(column[0]) >= 0, onchange: function (event) {
          if (event.target.checked) listColumns.push(column[0]);
          else listColumns = listColumns.filter(function (c) { return c !== column[0]; });
          load();
        } }), column[1]);
      }));

      function load() {
        var mine = ++loads;
        var after = listState.cursors[listState.cursors.length - 1];
        var fields = builtins.map(function (c) { return c[0]; }).filter(function (f) { return listColumns.indexOf(f) >= 0; });
        var query = "query($search: String, $segment: String, $after: String) { contacts(search: $search, segment: $segment, first: " + LIST_PAGE +
          ", after: $after) { totalCount pageInfo { hasNextPage endCursor } nodes { id name email externalId " + fields.join(" ") + " attributes } } }";
        var variables = {
          search: listState.search.trim() || null,
          segment: listState.slug ? "in segment " + JSON.stringify(listState.slug) : null,
          after: after,
        };
        table.classList.add("stale");
        gql(query, variables).then(function (data) {
          if (mine !== loads) return; // a later keystroke asked again
          table.classList.remove("stale");
          var page = data.contacts;
          var columns = listColumns.slice();
          var labels = {};
          BUILTIN_COLUMNS.forEach(function (c) { labels[c[0]] = c[1]; });
          replace(table, page.nodes.length ? h("table", {},
            h("thead", {}, h("tr", {}, h("th", {}, "Contact"), columns.map(function (c) { return h("th", {}, labels[c] || c.replace(/^attr:/, "")); }))),
            h("tbody", {}, page.nodes.map(function (contact) {
              var open = "#/contacts/" + encodeURIComponent(contact.id);
              return h("tr", { className: "clickable", "data-contact": contact.id, onclick: function () { location.hash = open; } },
                h("td", {}, h("a", { href: open }, contact.name || contact.email || contact.externalId || "Anonymous visitor")),
                columns.map(function (c) {
                  var value = c.indexOf("attr:") === 0 ? contact.attributes[c.slice(5)] : contact[c];
                  return h("td", {}, valueNode(value));
                }));
            }))) : h("p", { className: "muted" }, listState.search ? "No contact matches “" + listState.search + "”." : "No contacts."));
          var first = (listState.cursors.length - 1) * LIST_PAGE;
          replace(pager,
            h("span", { className: "muted", id: "contact-range" }, page.nodes.length ? (first + 1) + "–" + (first + page.nodes.length) + " of " + formatCount(page.totalCount) : ""),
            h("button", { type: "button", id: "contacts-previous", disabled: listState.cursors.length < 2, onclick: function () { listState.cursors.pop(); load(); } }, "Previous"),
            h("button", { type: "button", id: "contacts-next", disabled: !page.pageInfo.hasNextPage, onclick: function () { listState.cursors.push(page.pageInfo.endCursor); load(); } }, "Next"));
        }, function (error) {
          if (mine !== loads) return;
          table.classList.remove("stale");
          replace(table, failure(error, "p"));
        });
      }

      var onTyping = debounce(TYPING_PAUSE_MS, function () { listState.cursors = [null]; load(); });
      search.addEventListener("input", function () { listState.search = search.value; onTyping(); });
      segment.addEventListener("change", function () { listState.slug = segment.value; listState.cursors = [null]; load(); });
      if (can("segments:read")) {
        gql("{ segments(first: 100) { nodes { slug name } } }").then(function (data) {
          data.segments.nodes.forEach(function (s) { append(segment, h("option", { value: s.slug }, s.name)); });
          segment.value = listState.slug;
        }, function () {});
      } else {
        segment.hidden = true;
      }
      load();
    });
    replace(pane, h("div", { className: "row" }, search, segment), chooser, table, pager);
    search.focus();
  }

  var EDITABLE_FIELDS = [
    ["externalId", "External id"], ["email", "Email"], ["name", "Name"], ["phone", "Phone"], ["company", "Company"], ["accountRef", "Account ref"],
  ];

  /** A typed input for a declared attribute, holding `value`. */
  function attributeInput(definition, value) {
    var id = "edit-attr-" + definition.name.replace(/[^A-Za-z0-9_-]/g, "_");
    var props = { id: id, "data-attribute": definition.name, "aria-label": definition.name };
    if (definition.type === "BOOL") {
      var select = h("select", props, [["", "—"], ["true", "yes"], ["false", "no"]].map(function (o) { return h("option", { value: o[0] }, o[1]); }));
      select.value = value === true ? "true" : value === false ? "false" : "";
      return select;
    }
    if (definition.type === "NUMBER") props.type = "number";
    if (definition.type === "NUMBER") props.step = "any";
    if (definition.type === "DATETIME") props.type = "datetime-local";
    if (definition.type === "STRING_LIST") props.placeholder = "a, b, c";
    var shown = value === null || value === undefined ? "" : value;
    if (definition.type === "STRING_LIST" && Array.isArray(value)) shown = value.join(", ");
    if (definition.type === "DATETIME" && value) {
      var at = new Date(value);
      shown = new Date(at.getTime() - at.getTimezoneOffset() * 60000).toISOString().slice(0, 16);
    }
    props.value = String(shown);
    return h("input", props);
  }

  /** What an attribute input holds, as the API takes it (`null`: empty). */
  function attributeValue(definition, input) {
    var raw = input.value.trim();
    if (raw === "") return null;
    if (definition.type === "BOOL") return raw === "true";
    if (definition.type === "NUMBER") return Number(raw);
    if (definition.type === "DATETIME") return new Date(raw).toISOString();
    if (definition.type === "STRING_LIST") return raw.split(",").map(function (item) { return item.trim(); }).filter(Boolean);
    return raw;
  }

  /** Creates a contact (`saved` null) or edits one: its fields and its declared attributes. */
  function contactEditor(pane, saved) {
    attributes().then(function (registry) {
      var editable = registry.filter(function (a) { return readsAttribute(a); });
      var inputs = {};
      var fields = EDITABLE_FIELDS.filter(function (f) { return readsField(f[0]); }).map(function (f) {
        inputs[f[0]] = h("input", { id: "edit-" + f[0], value: saved && saved[f[0]] ? saved[f[0]] : "", required: !saved && f[0] === "externalId", spellcheck: "false" });
        return [h("dt", {}, h("label", { for: "edit-" + f[0] }, f[1] + (!saved && f[0] === "externalId" ? " (required)" : ""))), h("dd", {}, inputs[f[0]])];
      });
      var attributeInputs = editable.map(function (definition) {
        var input = attributeInput(definition, saved ? saved.attributes[definition.name] : null);
        return { definition: definition, input: input };
      });
      var status = h("p", { id: "edit-status", role: "status" });
      var form = h("form", { id: "contact-editor", className: "stack", onsubmit: function (event) {
        event.preventDefault();
        replace(status);
        var values = {};
        Object.keys(inputs).forEach(function (name) {
          var value = inputs[name].value.trim();
          if (value) values[name] = value;
          else if (saved && saved[name]) values[name] = null; // emptied: cleared
        });
        var attributesSent = {};
        attributeInputs.forEach(function (a) {
          var value = attributeValue(a.definition, a.input);
          var had = saved && saved.attributes[a.definition.name] !== undefined && saved.attributes[a.definition.name] !== null;
          if (value !== null || had) attributesSent[a.definition.name] = value;
        });
        values.attributes = attributesSent;
        var request = saved
          ? gql("mutation($input: UpdateContactInput!) { updateContact(input: $input) { contact { id } } }", { input: { id: saved.id, patch: values } })
            .then(function (data) { return data.updateContact.contact.id; })
          : gql("mutation($input: UpsertContactInput!) { upsertContact(input: $input) { contact { id } } }", { input: values })
            .then(function (data) { return data.upsertContact.contact.id; });
        request.then(function (id) { location.hash = "#/contacts/" + encodeURIComponent(id); },
          function (error) { replace(status, failure(error)); });
      } },
        h("h2", {}, saved ? "Edit contact" : "New contact"),
        h("dl", { className: "fields" }, fields),
        editable.length ? h("h2", {}, "Attributes") : null,
        h("dl", { className: "fields" }, attributeInputs.map(function (a) {
          return [h("dt", {}, h("label", { for: a.input.id }, a.definition.name)), h("dd", {}, a.input)];
        })),
        h("div", { className: "row" }, h("button", { type: "submit", className: "primary", id: "edit-save" }, saved ? "Save changes" : "Create"),
          h("a", { href: saved ? "#/contacts/" + encodeURIComponent(saved.id) : "#/contacts" }, "Cancel")),
        status);
      replace(pane, form);
    });
  }

  function lookUp(kind, value) {
    var query, variables;
    if (kind === "id") { query = "query($v: ID!) { contact(id: $v) { id } }"; variables = { v: value }; }
    else if (kind === "externalId") { query = "query($v: String!) { contact(externalId: $v) { id } }"; variables = { v: value }; }
    else { query = "query($v: IdentityInput!) { contact(identity: $v) { id } }"; variables = { v: { kind: kind, value: value } }; }
    return gql(query, variables).then(function (data) { return data.contact; });
  }

  function showContact(view, id) {
    replace(view, h("p", { className: "muted" }, "Loading…"));
    Promise.all([
      gql("query($id: ID!) { contact(id: $id) { " + CONTACT_FIELDS + " } contactHistory(id: $id, first: 100) { nodes { id survivorId absorbedId actor reason mergedAt undoneAt } } }", { id: id }),
      attributes(),
    ]).then(function (loaded) {
      var contact = loaded[0].contact;
      var history = loaded[0].contactHistory.nodes;
      var registry = loaded[1];
      replace(view,
        h("div", { className: "row spread" },
          h("h2", {}, contact.name || contact.externalId || contact.email || "Anonymous visitor", " ", h("small", { className: "muted mono", id: "contact-id" }, contact.id)),
          can("contacts:write") ? h("a", { href: "#/contacts/" + encodeURIComponent(contact.id) + "/edit", id: "contact-edit", className: "button" }, "Edit") : null),
        contactFields(contact),
        h("h2", {}, "Attributes"), contactAttributes(contact, registry),
        h("h2", {}, "Identities"), identities(contact),
        h("h2", {}, "Segments"), contactSegments(contact),
        h("h2", {}, "Merges"), merges(contact, history, view),
        activity(contact.id));
    }, function (error) { replace(view, failure(error, "p")); });
  }

  var keyNames = null;
  /** Key id → key name (admin keys may list the keys; for others ids stay ids). */
  function loadKeyNames() {
    if (!keyNames) {
      keyNames = can("admin")
        ? gql("{ apiKeys(first: 100) { nodes { id name } } }").then(function (data) {
          var names = {};
          data.apiKeys.nodes.forEach(function (key) { names[key.id] = key.name; });
          return names;
        }, function () { return {}; })
        : Promise.resolve({});
    }
    return keyNames;
  }

  /** Who wrote: the key's name when known (filled in once the names load), else its id. */
  function keyNameNode(id) {
    var node = h("span", { className: "key-name", title: id ? "key " + id : null }, formatValue(id));
    if (id) loadKeyNames().then(function (names) { if (names[id]) node.textContent = names[id]; });
    return node;
  }

  function contactFields(contact) {
    var rows = BUILTIN_COLUMNS.map(function (c) {
      var value = valueNode(contact[c[0]]);
      var shown = readsField(c[0]) ? value : h("span", { className: "masked" }, "not approved for this key");
      return [h("dt", {}, c[1]), h("dd", { "data-field": c[0] }, shown)];
    });
    rows.push([h("dt", {}, "First seen"), h("dd", {}, timeNode(contact.firstSeenAt))]);
    rows.push([h("dt", {}, "Created"), h("dd", {}, timeNode(contact.createdAt), " by ", keyNameNode(contact.createdBy))]);
    rows.push([h("dt", {}, "Updated"), h("dd", {}, timeNode(contact.updatedAt), " by ", keyNameNode(contact.updatedBy))]);
    rows.push([h("dt", {}, "Verified"), h("dd", {}, contact.verification ? [timeNode(contact.verification.verifiedAt), " (" + contact.verification.method + ")"] : "never")]);
    if (contact.mergedFrom.length) rows.push([h("dt", {}, "Merged from"), h("dd", { className: "mono" }, contact.mergedFrom.join(", "))]);
    return h("dl", { className: "fields", id: "contact-fields" }, rows);
  }

  function contactAttributes(contact, registry) {
    var rows = registry.map(function (definition) {
      var value;
      if (definition.sensitive && !can("pii:read")) value = h("span", { className: "masked" }, "•••••• sensitive (needs pii:read)");
      else if (!readsAttribute(definition)) value = h("span", { className: "masked" }, "not approved for this key");
      else value = valueNode(contact.attributes[definition.name]);
      return [h("dt", {}, definition.name), h("dd", { "data-attribute": definition.name }, value)];
    });
    return rows.length ? h("dl", { className: "fields", id: "contact-attributes" }, rows) : h("p", { className: "muted" }, "No attributes declared.");
  }

  function identities(contact) {
    return h("table", { id: "contact-identities" },
      h("thead", {}, h("tr", {}, h("th", {}, "Kind"), h("th", {}, "Value"), h("th", {}, "Provenance"), h("th", {}, "Since"))),
      h("tbody", {}, contact.identities.nodes.map(function (identity) {
        return h("tr", {}, h("td", {}, identity.kind), h("td", { className: "mono" }, identity.value), h("td", {}, identity.provenance), h("td", {}, timeNode(identity.createdAt)));
      })));
  }

  function contactSegments(contact) {
    if (!contact.segments.nodes.length) return h("p", { className: "muted", id: "contact-segments" }, "In no saved segment.");
    return h("div", { id: "contact-segments" }, contact.segments.nodes.map(function (s) {
      return h("a", { className: "tag", href: "#/explain?contact=" + encodeURIComponent(contact.id) + "&slug=" + encodeURIComponent(s.slug), title: "Explain" }, s.name);
    }));
  }

  function merges(contact, history, view) {
    var writable = can("contacts:write");
    var status = h("div", { id: "merge-status" });
    var table = history.length ? h("table", { id: "contact-merges" },
      h("thead", {}, h("tr", {}, h("th", {}, "When"), h("th", {}, "Survivor"), h("th", {}, "Absorbed"), h("th", {}, "Why"), h("th", {}, "By"), h("th", {}))),
      h("tbody", {}, history.map(function (merge) {
        return h("tr", {}, h("td", {}, timeNode(merge.mergedAt)), h("td", { className: "mono" }, merge.survivorId), h("td", { className: "mono" }, merge.absorbedId),
          h("td", {}, merge.reason), h("td", {}, merge.actor),
          h("td", {}, merge.undoneAt ? ["undone ", timeNode(merge.undoneAt)] : writable ? h("button", { type: "button", className: "unmerge", onclick: function () {
            gql("mutation($id: ID!) { unmergeContacts(input: { mergeId: $id }) { merge { id } } }", { id: merge.id })
              .then(function () { showContact(view, contact.id); }, function (error) { replace(status, failure(error)); });
          } }, "Unmerge") : ""));
      }))) : h("p", { className: "muted" }, "No merges.");
    if (!writable) return [table, status];
    var absorbed = h("input", { id: "merge-absorbed", placeholder: "id of a duplicate to merge into this contact", size: 40, spellcheck: "false" });
    var preview = h("div", { id: "merge-preview" });
    var form = h("form", { className: "row", onsubmit: function (event) {
      event.preventDefault();
      var variables = { survivor: contact.id, absorbed: absorbed.value.trim() };
      gql("query($survivor: ID!, $absorbed: ID!) { previewMerge(survivorId: $survivor, absorbedId: $absorbed) { fields { field isAttribute value source rule } } }", variables)
        .then(function (data) {
          replace(preview, h("table", {},
            h("thead", {}, h("tr", {}, h("th", {}, "Field"), h("th", {}, "Merged value"), h("th", {}, "From"), h("th", {}, "Rule"))),
            h("tbody", {}, data.previewMerge.fields.map(function (f) {
              return h("tr", {}, h("td", {}, f.field), h("td", {}, formatValue(f.value)), h("td", {}, f.source), h("td", {}, f.rule));
            }))),
          h("button", { type: "button", id: "merge-confirm", className: "primary", onclick: function () {
            gql("mutation($survivor: ID!, $absorbed: ID!) { mergeContacts(input: { survivorId: $survivor, absorbedId: $absorbed }) { merge { id } } }", variables)
              .then(function () { showContact(view, contact.id); }, function (error) { replace(status, failure(error)); });
          } }, "Merge as shown"));
        }, function (error) { replace(preview, failure(error, "p")); });
    } }, absorbed, h("button", { type: "submit" }, "Preview merge"));
    return [table, form, preview, status];
  }

  function activity(id) {
    var pane = h("section", { id: "contact-activity" });
    gql("query($id: ID!) { contact(id: $id) { conversationCount conversations(first: 10) { nodes { id channel startedAt outcome summary } } events(first: 10) { nodes { name at properties } } } }", { id: id })
      .then(function (data) {
        var c = data.contact;
        replace(pane,
          h("h2", {}, "Conversations (" + formatCount(c.conversationCount || 0) + ")"),
          c.conversations.nodes.length ? h("table", {}, h("tbody", {}, c.conversations.nodes.map(function (v) {
            return h("tr", {}, h("td", {}, timeNode(v.startedAt)), h("td", {}, v.channel || ""), h("td", {}, v.outcome || ""), h("td", {}, v.summary || ""));
          }))) : h("p", { className: "muted" }, "None."),
          h("h2", {}, "Latest events"),
          c.events.nodes.length ? h("table", {}, h("tbody", {}, c.events.nodes.map(function (e) {
            return h("tr", {}, h("td", {}, timeNode(e.at)), h("td", {}, e.name), h("td", { className: "mono" }, JSON.stringify(e.properties)));
          }))) : h("p", { className: "muted" }, "None."));
      }, function () { replace(pane); }); // activity outside the key's field policy: not shown
    return pane;
  }

  // ---- Attributes --------------------------------------------------------------------------

  function attributesPage() {
    var table = h("div", { id: "attributes-table" });
    function load() {
      attributeRegistry = null;
      attributes().then(function (registry) {
        replace(table, h("table", {},
          h("thead", {}, h("tr", {}, ["Name", "Type", "Sensitive", "Merge rule", "Description", "Declared"].map(function (t) { return h("th", {}, t); }))),
          h("tbody", {}, registry.map(function (a) {
            return h("tr", { "data-attribute": a.name }, h("td", { className: "mono" }, a.name), h("td", {}, a.type), h("td", {}, a.sensitive ? "yes" : ""),
              h("td", {}, a.mergeRule), h("td", {}, a.description || ""), h("td", {}, timeNode(a.createdAt)));
          }))));
      });
    }
    replace(main, h("h1", {}, "Attributes"), table, can("admin") ? defineForm(load) : h("p", { className: "muted" }, "Declaring attributes needs an admin key."));
    load();
  }

  function defineForm(done) {
    var name = h("input", { id: "define-name", placeholder: "plan", "aria-label": "Attribute name", spellcheck: "false" });
    var type = h("select", { id: "define-type", "aria-label": "Type" }, ["STRING", "NUMBER", "BOOL", "DATETIME", "STRING_LIST"].map(function (t) { return h("option", { value: t }, t); }));
    var description = h("input", { id: "define-description", placeholder: "What it means", "aria-label": "Description", size: 40 });
    var sensitive = h("input", { id: "define-sensitive", type: "checkbox" });
    var status = h("span", { id: "define-status" });
    return h("form", { id: "define-attribute", className: "panel stack", onsubmit: function (event) {
      event.preventDefault();
      var input = { name: name.value.trim(), type: type.value, description: description.value.trim() || null, sensitive: sensitive.checked };
      gql("mutation($input: DefineAttributeInput!) { defineAttribute(input: $input) { attribute { name } } }", { input: input })
        .then(function (data) { replace(status, h("span", { className: "ok" }, "Declared " + data.defineAttribute.attribute.name + ".")); name.value = ""; description.value = ""; done(); },
          function (error) { replace(status, failure(error)); });
    } },
      h("h2", {}, "Declare an attribute"),
      h("div", { className: "row" }, name, type, description, h("label", {}, sensitive, "sensitive (encrypted, pii:read to read)"),
        h("button", { type: "submit", className: "primary" }, "Declare"), status));
  }

  // ---- Imports -----------------------------------------------------------------------------

  var JOB_FIELDS = "id status dryRun processed created updated unchanged failed conflicts";

  function importsPage() {
    var file = h("input", { id: "import-file", type: "file", "aria-label": "File to import", accept: ".csv,.ndjson,.jsonl,.json,text/csv,application/x-ndjson" });
    var matchBy = h("select", { id: "import-match-by", "aria-label": "Match rows by" }, [["externalId", "match by external id"], ["email", "match by email"], ["phone", "match by phone"]].map(function (m) { return h("option", { value: m[0] }, m[1]); }));
    var dryRun = h("button", { type: "button", id: "import-dry-run", className: "primary", disabled: true }, "Dry run");
    var run = h("button", { type: "button", id: "import-run", disabled: true, title: "Run a dry run of this file first" }, "Import");
    var progress = h("div", { id: "import-progress", role: "status" });
    var report = h("section", { id: "import-report" });
    var jobs = h("section", { id: "import-jobs" });
    var checked = null; // the file (and match rule) a dry run last passed over

    /** Import runs only after a dry run of the chosen file with the chosen match rule. */
    function allowRun() {
      run.disabled = !(checked && checked.file === file.files[0] && checked.matchBy === matchBy.value);
    }

    function format(f) {
      return /\.csv$/i.test(f.name) || f.type === "text/csv" ? "csv" : "ndjson";
    }

    function start(isDryRun) {
      var chosen = file.files[0];
      if (!chosen) return;
      dryRun.disabled = run.disabled = true;
      replace(report);
      var url = "/v1/contacts/import?format=" + format(chosen) + "&matchBy=" + matchBy.value + (isDryRun ? "&dryRun=true" : "");
      var bar = h("progress", { max: chosen.size || 1, value: 0 });
      var rows = h("span", { id: "import-rows" }, "starting…");
      replace(progress, bar, " ", rows);
      var poller = setInterval(function () {
        gql("{ importJobs { " + JOB_FIELDS + " } }").then(function (data) {
          var running = data.importJobs.filter(function (j) { return j.status === "RUNNING"; })[0];
          if (running) replace(rows, formatCount(running.processed) + " rows processed");
        }, function () {});
      }, 300);
      var request = new XMLHttpRequest();
      request.open("POST", url);
      request.setRequestHeader("authorization", "Bearer " + session.key);
      request.setRequestHeader("content-type", format(chosen) === "csv" ? "text/csv" : "application/x-ndjson");
      request.upload.onprogress = function (event) { bar.value = event.loaded; };
      request.onloadend = function () {
        clearInterval(poller);
        bar.value = bar.max;
        var body = null;
        try { body = JSON.parse(request.responseText); } catch (e) { body = null; }
        if (request.status !== 200 || !body) {
          replace(rows, failure(firstError(body) || new ApiError("the server answered " + request.status)));
        } else {
          replace(rows, formatCount(body.processed) + " rows " + (body.dryRun ? "checked" : "read"));
          replace(report, importReport(body));
          if (body.dryRun) checked = { file: chosen, matchBy: matchBy.value };
        }
        dryRun.disabled = false;
        allowRun();
        loadJobs();
      };
      request.send(chosen);
    }

    function loadJobs() {
      gql("{ importJobs { " + JOB_FIELDS + " } }").then(function (data) {
        if (!data.importJobs.length) return replace(jobs);
        replace(jobs, h("h2", {}, "Recent imports"), h("table", {},
          h("thead", {}, h("tr", {}, ["Job", "Status", "Dry run", "Rows", "Created", "Updated", "Unchanged", "Failed", "Conflicts"].map(function (t) { return h("th", {}, t); }))),
          h("tbody", {}, data.importJobs.map(function (j) {
            return h("tr", {}, h("td", { className: "mono" }, j.id), h("td", {}, j.status), h("td", {}, j.dryRun ? "yes" : ""),
              [j.processed, j.created, j.updated, j.unchanged, j.failed, j.conflicts].map(function (n) { return h("td", {}, formatCount(n)); }));
          }))));
      }, function () {});
    }

    function onChoice() {
      dryRun.disabled = !file.files[0];
      allowRun();
      replace(report);
      replace(progress);
    }
    file.addEventListener("change", onChoice);
    matchBy.addEventListener("change", onChoice);
    dryRun.addEventListener("click", function () { start(true); });
    run.addEventListener("click", function () { start(false); });

    replace(main,
      h("h1", {}, "Import contacts"),
      h("p", { className: "muted" }, "A CSV with a header row, or NDJSON (one JSON object a line). Columns: external_id, email, name, phone, company, account_ref and declared attributes. A dry run first counts what would happen and lists the row errors, writing nothing."),
      h("div", { className: "row panel" }, file, matchBy, dryRun, run),
      progress, report, jobs);
    loadJobs();
  }

  function importReport(body) {
    var counts = [["created", body.created], ["updated", body.updated], ["unchanged", body.unchanged], ["failed", body.failed], ["conflicts", body.conflicts]];
    var errors = (body.errors || []).concat(body.firstConflicts || []);
    return [
      h("p", { id: "import-summary", className: body.failed ? "error" : "ok" },
        (body.dryRun ? "Dry run: " : "Done: ") + counts.map(function (c) { return formatCount(c[1]) + " " + c[0]; }).join(", ") +
        (body.dryRun ? " (nothing written)" : "") + "."),
      body.message ? h("p", { className: "error" }, body.message) : null,
      errors.length ? h("table", { id: "import-errors" },
        h("thead", {}, h("tr", {}, h("th", {}, "Line"), h("th", {}, "Problem"))),
        h("tbody", {}, errors.map(function (e) {
          var problems = e.problems && e.problems.length ? e.problems : [e];
          return h("tr", { "data-code": e.code }, h("td", {}, e.line),
            h("td", {}, problems.length > 1
              ? h("ul", { className: "problems" }, problems.map(function (p) { return h("li", {}, plainWords(p.message)); }))
              : plainWords(e.message)));
        }))) : null,
    ];
  }

  // ---- Start -------------------------------------------------------------------------------

  document.getElementById("sign-out").addEventListener("click", signOut);
  window.addEventListener("hashchange", route);
  var remembered = sessionStorage.getItem(KEY_STORAGE);
  if (remembered) signIn(remembered).then(route, function () { sessionStorage.removeItem(KEY_STORAGE); route(); });
  else route();
})();
