// The Workflows pages of the Hangfire dashboard (Workflow.Jobs): the Retry and Cancel buttons and the Send event form of a run page.
// A button carries its command's URL in data-workflow-command; the command is POSTed with the page's antiforgery
// token (meta tags csrf-header and csrf-token), then the page reloads, or shows the refusal's reason.
(function () {
  document.addEventListener('click', function (e) {
    var button = e.target.closest ? e.target.closest('[data-workflow-command]') : null;
    if (!button) { return; }
    e.preventDefault();
    var confirmText = button.getAttribute('data-confirm');
    if (confirmText && !window.confirm(confirmText)) { return; }
    var headers = {};
    var header = document.querySelector('meta[name="csrf-header"]');
    var token = document.querySelector('meta[name="csrf-token"]');
    if (header && token) { headers[header.getAttribute('content')] = token.getAttribute('content'); }
    var box = document.getElementById('workflow-command-error');
    box.hidden = true;
    button.disabled = true;
    fetch(button.getAttribute('data-workflow-command'), { method: 'POST', headers: headers, credentials: 'same-origin' })
      .then(function (response) {
        if (response.ok) { window.location.reload(); return; }
        return response.text().then(function (text) { throw new Error(text || ('HTTP ' + response.status)); });
      })
      .catch(function (error) {
        button.disabled = false;
        box.textContent = error.message;
        box.hidden = false;
      });
  });

  // Send event: the payload is checked as JSON here (the server validates it against the wait's type), then POSTed
  // as {"name": ..., "payload": {...}} with the antiforgery token; the page reloads, or shows the refusal's reason.
  document.addEventListener('submit', function (e) {
    var form = e.target;
    if (!form.getAttribute || !form.getAttribute('data-workflow-event')) { return; }
    e.preventDefault();
    var jsonError = document.getElementById('workflow-event-json-error');
    var box = document.getElementById('workflow-command-error');
    jsonError.hidden = true;
    box.hidden = true;
    var payload;
    try {
      payload = JSON.parse(document.getElementById('workflow-event-payload').value);
    } catch (err) {
      jsonError.textContent = 'The payload is not valid JSON: ' + err.message;
      jsonError.hidden = false;
      return;
    }
    if (payload === null || typeof payload !== 'object' || Array.isArray(payload)) {
      jsonError.textContent = 'The payload must be a JSON object ({...}).';
      jsonError.hidden = false;
      return;
    }
    var headers = { 'Content-Type': 'application/json' };
    var header = document.querySelector('meta[name="csrf-header"]');
    var token = document.querySelector('meta[name="csrf-token"]');
    if (header && token) { headers[header.getAttribute('content')] = token.getAttribute('content'); }
    var button = document.getElementById('workflow-send-event');
    button.disabled = true;
    fetch(form.getAttribute('data-workflow-event'), {
      method: 'POST', headers: headers, credentials: 'same-origin',
      body: JSON.stringify({ name: document.getElementById('workflow-event-name').value, payload: payload })
    })
      .then(function (response) {
        if (response.ok) { window.location.reload(); return; }
        return response.text().then(function (text) { throw new Error(text || ('HTTP ' + response.status)); });
      })
      .catch(function (error) {
        button.disabled = false;
        box.textContent = error.message;
        box.hidden = false;
      });
  });
})();
