/* The web authenticator app: pairing, the live list of requests, approvals, notifications.
 * Every answer goes through the device API with the token kept in IndexedDB. No inline code:
 * the portal's CSP allows scripts and styles from 'self' only. */
'use strict';
(function () {
  const { pickLanguage, makeT, describe, ago } = self.mailotpI18n;
  const deviceStore = self.mailotpDeviceStore;
  const lang = pickLanguage(location.search, navigator.languages);
  const t = makeT(lang);
  const API = '/api/v1';
  const VIEWS = ['loading', 'code', 'link', 'unbound', 'paired'];
  /** A stream that shows no byte (not even the 15 s heartbeat) for this long is dead. */
  const STREAM_SILENCE_MS = 45000;
  const POLL_CODE_MS = 2000;

  const $ = (id) => document.getElementById(id);
  let creds = null;
  /** Pending requests by id, as the stream or the list last said. */
  const pending = new Map();
  let lastEventId = null;
  let retryMs = 3000;
  let session = 0; // bumped when the paired view ends, so old loops stop
  let codeTimer = null;

  class Unbound extends Error {}

  function show(view) {
    for (const v of VIEWS) $('view-' + v).hidden = v !== view;
  }
  function say(msg) {
    $('error').textContent = '';
    $('status').textContent = msg;
  }
  function fail(msg) {
    $('status').textContent = '';
    $('error').textContent = msg;
  }
  function clearMessages() {
    $('status').textContent = '';
    $('error').textContent = '';
  }

  function applyTexts() {
    document.documentElement.lang = lang;
    document.title = t('title');
    for (const el of document.querySelectorAll('[data-t]')) el.textContent = t(el.getAttribute('data-t'));
    for (const el of document.querySelectorAll('[data-t-label]')) el.setAttribute('aria-label', t(el.getAttribute('data-t-label')));
  }

  function button(label, cls, onClick) {
    const b = document.createElement('button');
    b.type = 'button';
    b.textContent = label;
    if (cls) b.className = cls;
    b.addEventListener('click', onClick);
    return b;
  }

  /** One API call; throws on network failure, never on an HTTP status. */
  async function api(method, path, opts) {
    const headers = { accept: 'application/json' };
    const o = opts || {};
    if (o.token) headers.authorization = 'Bearer ' + o.token;
    const init = { method, headers, cache: 'no-store', credentials: 'omit' };
    if (o.body !== undefined) {
      headers['content-type'] = 'application/json';
      init.body = JSON.stringify(o.body);
    }
    const res = await fetch(API + path, init);
    let json = null;
    if (res.status !== 204) json = await res.json().catch(() => null);
    return { status: res.status, json };
  }

  /** An API call as the paired device; a 401 means the server no longer knows this phone. */
  async function authed(method, path, body) {
    const r = await api(method, path, { token: creds.token, body });
    if (r.status === 401) {
      await becomeUnbound();
      throw new Unbound();
    }
    return r;
  }

  function detailOf(r) {
    const j = r.json || {};
    return [r.status, j.error, j.message].filter(Boolean).join(' ');
  }

  function deviceName() {
    const ua = navigator.userAgent;
    if (/iPhone/.test(ua)) return 'iPhone (web app)';
    if (/iPad/.test(ua)) return 'iPad (web app)';
    if (/Android/.test(ua)) return 'Android phone (web app)';
    return 'Browser (web app)';
  }

  function groupCode(code) {
    return String(code).replace(/\D/g, '').replace(/(\d{3})(?=\d)/g, '$1 ');
  }

  function sleep(ms) {
    return new Promise((r) => setTimeout(r, ms));
  }

  // ---- pairing: code flow ------------------------------------------------------------------

  async function codeFlow() {
    clearTimeout(codeTimer);
    show('code');
    $('new-code').hidden = true;
    $('code-state').textContent = '';
    $('view-code').querySelector('[data-testid="device-code"]').textContent = '';
    let r;
    try {
      r = await api('POST', '/pairing/code', { body: { name: deviceName() } });
    } catch {
      fail(t('networkError'));
      $('new-code').hidden = false;
      return;
    }
    if (r.status !== 201 || !r.json || !r.json.code || !r.json.claim) {
      fail(t('pairUnavailable') + ' (' + detailOf(r) + ')');
      $('new-code').hidden = false;
      return;
    }
    clearMessages();
    $('view-code').querySelector('[data-testid="device-code"]').textContent = groupCode(r.json.code);
    $('code-state').textContent = t('codeWaiting');
    pollCode(r.json.claim);
  }

  function pollCode(claim) {
    codeTimer = setTimeout(async () => {
      let r;
      try {
        r = await api('GET', '/pairing/code/' + encodeURIComponent(claim));
      } catch {
        return pollCode(claim); // offline for a moment: keep trying until the code expires
      }
      if (r.status === 200 && r.json && r.json.status === 'bound') return pairedWith(r.json);
      if (r.status === 200) return pollCode(claim);
      $('code-state').textContent = t('codeExpired');
      $('new-code').hidden = false;
    }, POLL_CODE_MS);
  }

  // ---- pairing: link (QR) flow ---------------------------------------------------------------

  async function linkFlow(secret) {
    show('link');
    const box = $('link-numbers');
    box.textContent = '';
    let r;
    try {
      r = await api('GET', '/pairing/link/' + encodeURIComponent(secret));
    } catch {
      return fail(t('networkError'));
    }
    if (r.status !== 200 || !r.json || !Array.isArray(r.json.choices)) return fail(t('linkGone'));
    $('link-intro').textContent = t('linkIntro', { user: r.json.user });
    for (const n of r.json.choices) {
      box.append(button(String(n), 'primary', () => pickLinkNumber(secret, n)));
    }
  }

  async function pickLinkNumber(secret, number) {
    for (const b of $('link-numbers').querySelectorAll('button')) b.disabled = true;
    let r;
    try {
      r = await api('POST', '/pairing/link/' + encodeURIComponent(secret), { body: { number, name: deviceName() } });
    } catch {
      for (const b of $('link-numbers').querySelectorAll('button')) b.disabled = false;
      return fail(t('networkError'));
    }
    $('link-numbers').textContent = '';
    if (r.status === 200 && r.json && r.json.token) return pairedWith(r.json);
    if (r.status === 409) return fail(t('linkWrong'));
    if (r.status === 404) return fail(t('linkGone'));
    fail(t('serverError', { detail: detailOf(r) }));
  }

  async function pairedWith(j) {
    creds = { token: j.token, deviceId: j.deviceId, user: j.user };
    await deviceStore.save(creds);
    // The pairing secret must not stay in the address bar or the history.
    history.replaceState(null, '', location.pathname + location.search);
    say(t('paired'));
    return paired();
  }

  // ---- unbound --------------------------------------------------------------------------------

  async function becomeUnbound() {
    session++;
    creds = null;
    pending.clear();
    await deviceStore.forget().catch(() => undefined);
    if ('serviceWorker' in navigator) {
      const reg = await navigator.serviceWorker.getRegistration('/app/').catch(() => null);
      const sub = reg && reg.pushManager ? await reg.pushManager.getSubscription().catch(() => null) : null;
      if (sub) await sub.unsubscribe().catch(() => undefined);
    }
    clearMessages();
    show('unbound');
  }

  // ---- paired ---------------------------------------------------------------------------------

  async function paired() {
    const mine = ++session;
    show('paired');
    let me;
    try {
      me = await authed('GET', '/device/me');
    } catch (e) {
      if (e instanceof Unbound) return;
      fail(t('networkError'));
      await sleep(5000);
      if (mine === session) return paired();
      return;
    }
    if (me.status !== 200) return fail(t('serverError', { detail: detailOf(me) }));
    $('account').textContent = t('account', { user: me.json.user, name: me.json.name });
    render();
    void runStream(mine);
    void loadApprovals();
    void setupNotifications();
    const tick = setInterval(() => {
      if (mine !== session) return clearInterval(tick);
      render();
    }, 30000);
    // Also how an unbinding on the server is noticed while the page stays open: a 401 on any call.
    const refresh = setInterval(() => {
      if (mine !== session) return clearInterval(refresh);
      void loadApprovals();
    }, 60000);
    const onVisible = () => {
      if (mine !== session) return document.removeEventListener('visibilitychange', onVisible);
      if (document.visibilityState !== 'visible') return;
      void loadApprovals();
      void pollRequests().catch(() => undefined);
    };
    document.addEventListener('visibilitychange', onVisible);
  }

  function setLive(on) {
    $('live').textContent = on ? '● ' + t('live') : t('offline');
    $('live').classList.toggle('on', on);
  }

  /** Reads the event stream with fetch (EventSource cannot send the Authorization header). */
  async function runStream(mine) {
    let failures = 0;
    while (mine === session) {
      const ctrl = new AbortController();
      let silence = null;
      const feed = () => {
        clearTimeout(silence);
        silence = setTimeout(() => ctrl.abort(), STREAM_SILENCE_MS);
      };
      try {
        const headers = { accept: 'text/event-stream', authorization: 'Bearer ' + creds.token };
        if (lastEventId !== null) headers['last-event-id'] = lastEventId;
        feed();
        const res = await fetch(API + '/device/events', { headers, cache: 'no-store', credentials: 'omit', signal: ctrl.signal });
        if (res.status === 401) {
          clearTimeout(silence);
          return becomeUnbound();
        }
        if (!res.ok || !res.body) throw new Error('HTTP ' + res.status);
        // A fresh stream starts with the whole pending list.
        if (lastEventId === null) pending.clear();
        setLive(true);
        failures = 0;
        await readEvents(res.body, feed, mine);
      } catch {
        // fall through: reconnect below
      } finally {
        clearTimeout(silence);
        ctrl.abort();
      }
      if (mine !== session) return;
      setLive(false);
      failures++;
      // While the stream is down, the list still comes from the plain API.
      await pollRequests().catch(() => undefined);
      await sleep(Math.min(retryMs * failures, 30000));
    }
  }

  async function readEvents(body, feed, mine) {
    const reader = body.pipeThrough(new TextDecoderStream()).getReader();
    let buf = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done || mine !== session) return;
      feed();
      buf += value;
      let i;
      while ((i = buf.search(/\r?\n\r?\n/)) >= 0) {
        const block = buf.slice(0, i);
        buf = buf.slice(buf[i] === '\r' ? i + 4 : i + 2);
        handleBlock(block);
      }
    }
  }

  function handleBlock(block) {
    let event = 'message';
    let data = '';
    for (const line of block.split(/\r?\n/)) {
      if (line.startsWith(':')) continue;
      const c = line.indexOf(':');
      const field = c < 0 ? line : line.slice(0, c);
      const value = c < 0 ? '' : line.slice(c + 1).replace(/^ /, '');
      if (field === 'id') lastEventId = value;
      else if (field === 'event') event = value;
      else if (field === 'data') data = data ? data + '\n' + value : value;
      else if (field === 'retry' && /^\d+$/.test(value)) retryMs = Number(value);
    }
    if (!data) return;
    let obj;
    try {
      obj = JSON.parse(data);
    } catch {
      return;
    }
    if (event === 'request' && obj && obj.id) pending.set(obj.id, obj);
    else if (event === 'settled' && obj && obj.id) pending.delete(obj.id);
    else if (event === 'reset') pending.clear();
    else if (event === 'notice' && obj && obj.kind === 'recovery-code-used') return showNotice(t('recoveryUsedText', { user: String(obj.user), left: String(obj.left) }));
    else return;
    render();
  }

  /** A notice that needs no answer, from the event stream or the service worker (the same text twice shows once). */
  function showNotice(text) {
    const box = $('notice');
    box.textContent = text;
    box.hidden = false;
  }

  async function pollRequests() {
    const r = await authed('GET', '/device/requests');
    if (r.status !== 200 || !r.json) return;
    pending.clear();
    for (const q of r.json.requests) pending.set(q.id, q);
    render();
  }

  /** Brings the list in line with `pending`, keeping the items (and focus) that stay. */
  function render() {
    const ul = $('requests');
    const now = Date.now();
    for (const li of [...ul.children]) if (!pending.has(li.dataset.id)) li.remove();
    const sorted = [...pending.values()].sort((a, b) => Date.parse(a.createdAt) - Date.parse(b.createdAt));
    for (const r of sorted) {
      let li = ul.querySelector('li[data-id="' + CSS.escape(r.id) + '"]');
      if (!li) {
        li = requestItem(r);
        ul.append(li);
      }
      li.querySelector('.when').textContent = ago(t, r.createdAt, now);
    }
    $('no-pending').hidden = pending.size > 0;
  }

  function requestItem(r) {
    const li = document.createElement('li');
    li.dataset.id = r.id;
    const what = document.createElement('p');
    what.className = 'what';
    what.textContent = describe(t, r);
    const when = document.createElement('p');
    when.className = 'when muted';
    li.append(what, when);
    const actions = document.createElement('div');
    actions.className = 'actions';
    if (Array.isArray(r.choices) && r.choices.length > 0) {
      const hint = document.createElement('p');
      hint.textContent = t('pickNumber');
      const numbers = document.createElement('div');
      numbers.className = 'numbers';
      for (const n of r.choices) numbers.append(button(String(n), 'approve', () => decide(r, li, 'approve', n)));
      li.append(hint, numbers);
    } else if (typeof r.code === 'string') {
      // Push code: the same six digits the person types on the sign-in page, or a Yes here.
      const hint = document.createElement('p');
      hint.textContent = t('pushCode');
      const code = document.createElement('p');
      code.className = 'code';
      code.dataset.testid = 'push-code';
      code.textContent = r.code;
      li.append(hint, code);
      actions.append(button(t('yes'), 'approve', () => decide(r, li, 'approve')));
    } else {
      actions.append(button(t('approve'), 'approve', () => decide(r, li, 'approve')));
    }
    actions.append(button(t('deny'), 'deny', () => decide(r, li, 'deny')), button(t('report'), 'report', () => decide(r, li, 'report')));
    li.append(actions);
    return li;
  }

  async function decide(r, li, decision, number) {
    const buttons = li.querySelectorAll('button');
    for (const b of buttons) b.disabled = true;
    const body = number === undefined ? { decision } : { decision, number };
    let res;
    try {
      res = await authed('POST', '/device/requests/' + encodeURIComponent(r.id), body);
    } catch (e) {
      if (e instanceof Unbound) return;
      for (const b of buttons) b.disabled = false;
      return fail(t('networkError'));
    }
    const status = res.json && res.json.status;
    if (res.status === 200) {
      pending.delete(r.id);
      render();
      say(decision === 'report' ? t('reported') : status === 'approved' ? t('approved') : decision === 'approve' ? t('wrongNumber') : t('denied'));
      if (status === 'approved') void loadApprovals();
      return;
    }
    if (res.status === 404 || res.status === 409) {
      pending.delete(r.id);
      render();
      return say(t('gone'));
    }
    for (const b of buttons) b.disabled = false;
    if (res.status === 422) return fail(t('wrongNumber'));
    fail(t('serverError', { detail: detailOf(res) }));
  }

  // ---- approved connections -----------------------------------------------------------------

  function when(iso) {
    return new Date(iso).toLocaleString(lang, { dateStyle: 'short', timeStyle: 'short' });
  }

  async function loadApprovals() {
    let r;
    try {
      r = await authed('GET', '/device/approvals');
    } catch {
      return;
    }
    if (r.status !== 200 || !r.json) return;
    const ul = $('approvals');
    ul.textContent = '';
    for (const a of r.json.approvals) {
      const li = document.createElement('li');
      const text = document.createElement('span');
      text.textContent = t('approvalLine', { ip: a.clientIp, when: when(a.approvedAt), until: when(a.expiresAt) });
      li.append(text, button(t('revoke'), 'deny', () => revoke(a.clientIp, li)));
      ul.append(li);
    }
    $('no-approvals').hidden = r.json.approvals.length > 0;
  }

  async function revoke(clientIp, li) {
    for (const b of li.querySelectorAll('button')) b.disabled = true;
    let r;
    try {
      r = await authed('DELETE', '/device/approvals?clientIp=' + encodeURIComponent(clientIp));
    } catch (e) {
      if (!(e instanceof Unbound)) fail(t('networkError'));
      return;
    }
    if (r.status !== 200) return fail(t('serverError', { detail: detailOf(r) }));
    say(t('revoked'));
    await loadApprovals();
  }

  // ---- notifications --------------------------------------------------------------------------

  function isIos() {
    return /iPhone|iPad|iPod/.test(navigator.userAgent) || (navigator.platform === 'MacIntel' && navigator.maxTouchPoints > 1);
  }

  function keyBytes(b64url) {
    const b64 = b64url.replace(/-/g, '+').replace(/_/g, '/');
    const raw = atob(b64 + '='.repeat((4 - (b64.length % 4)) % 4));
    return Uint8Array.from(raw, (c) => c.charCodeAt(0));
  }

  function sameKey(buffer, bytes) {
    if (!buffer) return false;
    const a = new Uint8Array(buffer);
    return a.length === bytes.length && a.every((v, i) => v === bytes[i]);
  }

  async function subscribe(publicKey) {
    const reg = await navigator.serviceWorker.ready;
    const key = keyBytes(publicKey);
    let sub = await reg.pushManager.getSubscription();
    // A subscription made for another server key can never be used by this server.
    if (sub && !sameKey(sub.options.applicationServerKey, key)) {
      await sub.unsubscribe();
      sub = null;
    }
    if (!sub) sub = await reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: key });
    const r = await authed('PUT', '/device/push-subscription', sub.toJSON());
    if (r.status !== 204) throw new Error(detailOf(r));
  }

  async function setupNotifications() {
    const btn = $('notify');
    const state = $('notify-state');
    btn.hidden = true;
    if (!('serviceWorker' in navigator) || !('PushManager' in self) || !('Notification' in self)) {
      state.textContent = isIos() ? t('notifyIos') : t('notifyUnsupported');
      return;
    }
    let key;
    try {
      key = await api('GET', '/webpush/key');
    } catch {
      return;
    }
    // The server has no Web Push configured: the open page still gets everything live.
    if (key.status !== 200 || !key.json || !key.json.publicKey) return;
    const turnOn = async () => {
      try {
        await subscribe(key.json.publicKey);
        btn.hidden = true;
        state.textContent = t('notifyActive');
      } catch (e) {
        if (!(e instanceof Unbound)) state.textContent = t('notifyFailed', { detail: e && e.message ? e.message : String(e) });
      }
    };
    if (Notification.permission === 'granted') return turnOn();
    if (Notification.permission === 'denied') {
      state.textContent = t('notifyDenied');
      return;
    }
    btn.hidden = false;
    btn.onclick = async () => {
      // Asked only on a tap: iOS allows the prompt from a user gesture alone.
      const p = await Notification.requestPermission();
      if (p === 'granted') await turnOn();
      else state.textContent = t('notifyDenied');
    };
  }

  // ---- start ----------------------------------------------------------------------------------

  async function start() {
    applyTexts();
    $('new-code').addEventListener('click', () => codeFlow());
    $('pair-again').addEventListener('click', () => codeFlow());
    if ('serviceWorker' in navigator) {
      navigator.serviceWorker.register('/app/sw.js', { scope: '/app/' }).catch(() => undefined);
      // A Web Push "unbound" from the server (the phone was cleared): the worker forgot the token already.
      navigator.serviceWorker.addEventListener('message', (e) => {
        if (e.data && e.data.kind === 'unbound' && creds) void becomeUnbound();
        if (e.data && e.data.kind === 'notice' && typeof e.data.text === 'string') showNotice(e.data.text);
      });
    }
    creds = await deviceStore.load().catch(() => null);
    const pair = /^#pair=([A-Za-z0-9_-]{8,256})$/.exec(location.hash);
    if (creds) return paired();
    if (pair) return linkFlow(pair[1]);
    return codeFlow();
  }

  void start();
})();
