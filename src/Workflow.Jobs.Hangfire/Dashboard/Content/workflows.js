// The Workflows pages of the Hangfire dashboard (Workflow.Jobs): the Retry, Cancel and Fork commands and the Send event
// form of a run page, and the bulk actions of the list page. Every command is POSTed with the page's antiforgery token
// (meta tags csrf-header and csrf-token); the page then reloads or moves on, or shows the refusal's reason.
(function () {
  function antiforgery() {
    var headers = {};
    var header = document.querySelector('meta[name="csrf-header"]');
    var token = document.querySelector('meta[name="csrf-token"]');
    if (header && token) { headers[header.getAttribute('content')] = token.getAttribute('content'); }
    return headers;
  }

  function failure(response) {
    return response.text().then(function (text) { throw new Error(text || ('HTTP ' + response.status)); });
  }

  function show(box, message) {
    box.textContent = message;
    box.hidden = false;
  }

  // Run page: Retry and Cancel.
  document.addEventListener('click', function (e) {
    var button = e.target.closest ? e.target.closest('[data-workflow-command]') : null;
    if (!button) { return; }
    e.preventDefault();
    var confirmText = button.getAttribute('data-confirm');
    if (confirmText && !window.confirm(confirmText)) { return; }
    var box = document.getElementById('workflow-command-error');
    box.hidden = true;
    button.disabled = true;
    fetch(button.getAttribute('data-workflow-command'), { method: 'POST', headers: antiforgery(), credentials: 'same-origin' })
      .then(function (response) {
        if (response.ok) { window.location.reload(); return; }
        return failure(response);
      })
      .catch(function (error) {
        button.disabled = false;
        show(box, error.message);
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

  // A button that opens or closes a panel (the Fork form).
  document.addEventListener('click', function (e) {
    var button = e.target.closest ? e.target.closest('[data-workflow-toggle]') : null;
    if (!button) { return; }
    e.preventDefault();
    var panel = document.getElementById(button.getAttribute('data-workflow-toggle'));
    if (panel) { panel.hidden = !panel.hidden; }
  });

  // Run page: Fork. The form is sent as it is; the answer is the new run's page, or the errors with their paths.
  document.addEventListener('submit', function (e) {
    var form = e.target;
    if (!form.hasAttribute || !form.hasAttribute('data-workflow-fork')) { return; }
    e.preventDefault();
    var errors = document.getElementById('workflow-fork-errors');
    var list = errors.querySelector('ul');
    errors.hidden = true;
    list.textContent = '';
    var submit = document.getElementById('workflow-fork-submit');
    submit.disabled = true;
    fetch(form.getAttribute('data-workflow-fork'), {
      method: 'POST', headers: antiforgery(), credentials: 'same-origin', body: new URLSearchParams(new FormData(form))
    })
      .then(function (response) {
        var json = (response.headers.get('Content-Type') || '').indexOf('application/json') === 0;
        if (!json) { return failure(response); }
        return response.json().then(function (body) {
          if (response.ok) { window.location.href = body.url; return; }
          (body.errors || []).forEach(function (error) {
            var item = document.createElement('li');
            var path = document.createElement('code');
            path.className = 'workflow-error-path';
            path.textContent = error.path || '(input)';
            item.appendChild(path);
            item.appendChild(document.createTextNode(' ' + error.message));
            list.appendChild(item);
          });
          errors.hidden = false;
          submit.disabled = false;
        });
      })
      .catch(function (error) {
        var item = document.createElement('li');
        item.textContent = error.message;
        list.appendChild(item);
        errors.hidden = false;
        submit.disabled = false;
      });
  });

  // List page: bulk actions. Count, confirm (a filter that selects every run is confirmed twice), start the job.
  document.addEventListener('click', function (e) {
    var button = e.target.closest ? e.target.closest('[data-workflow-bulk]') : null;
    if (!button) { return; }
    e.preventDefault();
    var panel = document.getElementById('workflow-bulk');
    var box = document.getElementById('workflow-bulk-error');
    box.hidden = true;
    button.disabled = true;
    fetch(panel.getAttribute('data-workflow-bulk-count'), { credentials: 'same-origin', headers: { Accept: 'application/json' } })
      .then(function (response) { return response.ok ? response.json() : failure(response); })
      .then(function (counted) {
        button.disabled = false;
        if (counted.count === 0) { show(box, 'No run matches the filter.'); return; }
        if (!window.confirm(button.getAttribute('data-confirm').replace('{count}', counted.count))) { return; }
        var url = button.getAttribute('data-workflow-bulk');
        if (panel.getAttribute('data-workflow-bulk-everything') === 'true') {
          var typed = window.prompt('No filter is set: this acts on EVERY run (' + counted.count + '). Type ALL to confirm.');
          if (typed !== 'ALL') { return; }
          url += (url.indexOf('?') < 0 ? '?' : '&') + 'all=true';
        }
        button.disabled = true;
        return fetch(url, { method: 'POST', headers: antiforgery(), credentials: 'same-origin' })
          .then(function (response) { return response.ok ? response.json() : failure(response); })
          .then(function (started) { window.location.href = started.listUrl; });
      })
      .catch(function (error) {
        button.disabled = false;
        show(box, error.message);
      });
  });

  // List page: the progress of a bulk action, polled until its job is done.
  function poll(progress) {
    fetch(progress.getAttribute('data-workflow-bulk-status'), { credentials: 'same-origin', headers: { Accept: 'application/json' } })
      .then(function (response) { return response.ok ? response.json() : failure(response); })
      .then(function (status) {
        var verb = { retry: 'retried', cancel: 'cancelled', purge: 'purged' }[status.action] || status.action;
        var text = 'Bulk ' + status.action + ' (job #' + status.jobId + ', ' + status.state + '): ' + status.done + ' runs ' + verb;
        if (status.total !== null && status.total !== undefined) { text += ' of ' + status.total + ' selected'; }
        if (status.error) { text += '. Error: ' + status.error; }
        document.getElementById('workflow-bulk-progress-text').textContent = text + (status.finished ? '.' : '…');
        var bar = document.getElementById('workflow-bulk-progress-bar');
        var percent = status.finished ? 100 : (status.total ? Math.min(100, Math.round(status.done * 100 / status.total)) : 0);
        bar.style.width = percent + '%';
        bar.className = 'progress-bar' + (status.state === 'Failed' ? ' progress-bar-danger' : status.finished ? ' progress-bar-success' : '');
        progress.className = 'alert workflow-bulk-progress ' + (status.state === 'Failed' ? 'alert-danger' : status.finished ? 'alert-success' : 'alert-info');
        progress.setAttribute('data-state', status.state);
        progress.setAttribute('data-done', status.done);
        if (status.finished) {
          document.getElementById('workflow-bulk-reload').hidden = false;
        } else {
          window.setTimeout(function () { poll(progress); }, 1000);
        }
      })
      .catch(function (error) {
        document.getElementById('workflow-bulk-progress-text').textContent = error.message;
        window.setTimeout(function () { poll(progress); }, 3000);
      });
  }

  function start() {
    var progress = document.getElementById('workflow-bulk-progress');
    if (progress) { poll(progress); }
  }

  if (document.readyState === 'loading') { document.addEventListener('DOMContentLoaded', start); } else { start(); }
})();
