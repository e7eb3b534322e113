// The portal pages' only script (the CSP allows no inline code). It follows a sign-in request or a
// QR pairing live and moves on by itself, and saves the mail-app switch as soon as it is flipped.
// A status URL with ?wait=1 answers when something happens (the server holds it open); the next
// request goes out at once after a held answer, and no sooner than POLL_MS after a quick one.
'use strict';

(function () {
  var POLL_MS = 1500;

  function followLive(status) {
    var url = status.getAttribute('data-follow');
    var done = false;
    function finish(message) {
      done = true;
      status.textContent = message || '';
      status.classList.add('error');
      document.querySelectorAll('[data-while-waiting]').forEach(function (el) { el.hidden = true; });
      document.querySelectorAll('[data-when-done]').forEach(function (el) { el.hidden = false; });
    }
    // A form posted from this page (a typed code, Cancel, another method, the remember box) moves
    // the browser on by itself: an answer still on its way must not navigate over it.
    document.addEventListener('submit', function () { done = true; });
    function tick() {
      if (done) return;
      var started = Date.now();
      fetch(url, { credentials: 'same-origin', cache: 'no-store', headers: { Accept: 'application/json' } })
        .then(function (res) {
          if (res.status === 401) {
            done = true;
            location.assign('/');
            return null;
          }
          return res.ok ? res.json() : null;
        })
        .then(function (body) {
          if (!body || done) return;
          if (body.next) {
            done = true;
            location.assign(body.next);
          } else if (body.status !== 'pending' && body.status !== 'waiting') {
            finish(body.message);
          }
        })
        .catch(function () { /* offline for a moment: the next tick tries again */ })
        .then(function () { if (!done) setTimeout(tick, Math.max(0, POLL_MS - (Date.now() - started))); });
    }
    tick();
  }

  function autosubmit(form) {
    var toggle = form.querySelector('input[type="checkbox"]');
    var save = form.querySelector('[data-save]');
    if (!toggle || !save || toggle.disabled) return;
    save.hidden = true;
    toggle.addEventListener('change', function () {
      if (form.requestSubmit) form.requestSubmit(); else form.submit();
    });
  }

  function start() {
    var status = document.querySelector('[data-follow]');
    if (status) followLive(status);
    document.querySelectorAll('form[data-autosubmit]').forEach(autosubmit);
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
