// The passkey ceremonies of the settings page (register) and the second step (sign in). The WebAuthn
// calls and their base64url encoding are SimpleWebAuthn's (window.SimpleWebAuthnBrowser, loaded
// before this file); this file asks the portal for options, runs the browser's prompt, sends the
// answer back with the page's CSRF token, and follows the redirect the portal names.
'use strict';

(function () {
  function csrf() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute('content') : '';
  }

  function post(url, body) {
    return fetch(url, {
      method: 'POST',
      credentials: 'same-origin',
      cache: 'no-store',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json', 'csrf-token': csrf() },
      body: JSON.stringify(body || {}),
    }).then(function (res) {
      return res.json().catch(function () { return {}; }).then(function (json) { return { status: res.status, body: json }; });
    });
  }

  function ceremony(box) {
    var kind = box.getAttribute('data-passkey-ceremony');
    var button = box.querySelector('[data-passkey-start]');
    var status = box.querySelector('[data-passkey-status]');
    var W = typeof SimpleWebAuthnBrowser === 'undefined' ? null : SimpleWebAuthnBrowser;
    if (!button || !status) return;

    function say(text, error) {
      status.hidden = false;
      status.textContent = text || status.getAttribute('data-failed');
      status.classList.toggle('error', Boolean(error));
    }

    if (!W || !W.browserSupportsWebAuthn()) {
      button.disabled = true;
      say(status.getAttribute('data-unsupported'), true);
      return;
    }

    function answered(res) {
      if (res.body && res.body.next) {
        location.assign(res.body.next);
        return;
      }
      button.disabled = false;
      say(res.body && res.body.message, true);
    }

    button.addEventListener('click', function () {
      button.disabled = true;
      say(status.getAttribute('data-waiting'), false);
      post(box.getAttribute('data-options'))
        .then(function (res) {
          if (!res.body || !res.body.options) return answered(res);
          var run = kind === 'register' ? W.startRegistration({ optionsJSON: res.body.options }) : W.startAuthentication({ optionsJSON: res.body.options });
          return run.then(
            function (response) {
              var body = { response: response };
              var name = box.querySelector('input[name="name"]');
              var remember = box.querySelector('input[name="remember"]');
              if (name) body.name = name.value;
              if (remember) body.remember = remember.checked;
              return post(box.getAttribute('data-verify'), body).then(answered);
            },
            function () {
              // The prompt was closed, timed out, or the authenticator refused: nothing was sent.
              button.disabled = false;
              say(status.getAttribute('data-cancelled'), true);
            },
          );
        })
        .catch(function () {
          button.disabled = false;
          say(status.getAttribute('data-failed'), true);
        });
    });
  }

  function start() {
    document.querySelectorAll('[data-passkey-ceremony]').forEach(ceremony);
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
