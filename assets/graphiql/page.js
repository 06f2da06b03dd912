// GraphiQL against this service's /graphql, with the API key from the field above the editor.
// The key is kept in sessionStorage (this tab only) and sent as `Authorization: Bearer`.
(function () {
  "use strict";
  var STORAGE_KEY = "qwry-api-key";
  var input = document.getElementById("api-key");
  var root = ReactDOM.createRoot(document.getElementById("graphiql"));

  function fetcherFor(key) {
    return function (params, options) {
      var headers = { "content-type": "application/json", accept: "application/json" };
      var extra = (options && options.headers) || {};
      Object.keys(extra).forEach(function (name) { headers[name] = extra[name]; });
      if (key) { headers.authorization = "Bearer " + key; }
      return fetch("/graphql", {
        method: "POST",
        headers: headers,
        body: JSON.stringify(params),
      }).then(function (response) { return response.json(); });
    };
  }

  function render() {
    var key = input.value.trim();
    root.render(React.createElement(GraphiQL, {
      fetcher: fetcherFor(key),
      // A new fetcher per key: GraphiQL fetches the schema again when the key changes.
      key: key,
      defaultEditorToolsVisibility: true,
    }));
  }

  input.value = sessionStorage.getItem(STORAGE_KEY) || "";
  var timer = null;
  input.addEventListener("input", function () {
    sessionStorage.setItem(STORAGE_KEY, input.value.trim());
    clearTimeout(timer);
    timer = setTimeout(render, 400);
  });
  document.getElementById("key-bar").addEventListener("submit", function (event) {
    event.preventDefault();
    render();
  });
  render();
})();
