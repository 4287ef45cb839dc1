// The Workflows pages of the Hangfire dashboard (Workflow.Jobs): the Retry and Cancel buttons of a run page.
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
})();
