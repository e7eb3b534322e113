/* The app's texts in English and Traditional Chinese, shared by the page and the service worker.
 * A classic script (the worker loads it with importScripts), so it sets one global. */
'use strict';
(function (root) {
  const TEXTS = {
    en: {
      title: 'mailotp authenticator',
      loading: 'Loading…',
      pairTitle: 'Pair this phone',
      pairIntro: 'On your computer, sign in to the portal, open Settings, choose “Bind a phone” and enter this code in “Device verification code”.',
      codeLabel: 'Device verification code',
      codeWaiting: 'Waiting for the code to be entered…',
      codeExpired: 'The code expired.',
      newCode: 'Get a new code',
      pairUnavailable: 'Pairing is not available right now',
      linkTitle: 'Pick the number shown on your computer',
      linkIntro: 'Pairing this phone for {user}. Tap the number your computer shows.',
      linkGone: 'This pairing link has expired or was already used. Start again on your computer.',
      linkWrong: 'That was not the number on your computer, so the pairing was cancelled. Start again on your computer.',
      paired: 'This phone is paired.',
      unboundTitle: 'This phone is no longer bound',
      unboundText: 'Its device token was cleared on the server (the device was removed or replaced). Requests will no longer reach it.',
      recoveryUsedTitle: 'Recovery code used',
      recoveryUsedText: 'A recovery code was used to sign in as {user}; {left} left. If this was not you, change your password now.',
      pairAgain: 'Pair again',
      account: 'Approving for {user} on “{name}”',
      pendingTitle: 'Waiting for you',
      noPending: 'Nothing to approve right now.',
      approve: 'Approve',
      deny: 'Deny',
      report: 'This wasn’t me',
      pickNumber: 'Pick the number shown on the sign-in page:',
      pushCode: 'Type this code on the sign-in page, or tap Yes:',
      yes: 'Yes',
      approved: 'Approved.',
      denied: 'Denied.',
      expired: 'This request expired.',
      reported: 'Reported and denied.',
      gone: 'This request is no longer open.',
      wrongNumber: 'Wrong number: the request was refused.',
      serverError: 'The server refused this: {detail}',
      networkError: 'Cannot reach the server. Check your connection and try again.',
      approvalsTitle: 'Approved connections',
      noApprovals: 'No approved connections.',
      approvalLine: '{ip}, approved {when}, until {until}',
      revoke: 'Revoke',
      revoked: 'Approval revoked.',
      live: 'Live',
      offline: 'Reconnecting…',
      notifyOn: 'Turn on notifications',
      notifyActive: 'Notifications are on.',
      notifyDenied: 'Notifications are blocked for this site; allow them in the browser settings.',
      notifyIos: 'For notifications on iPhone or iPad: tap Share, then “Add to Home Screen”, and open the app from there.',
      notifyUnsupported: 'This browser cannot receive notifications; keep this page open to see requests.',
      notifyFailed: 'Could not turn on notifications: {detail}',
      // who / what / where
      connection: '{client} on {protocol} from {ip}',
      someClient: 'A mail client',
      login: 'Web sign-in from {ip}',
      justNow: 'just now',
      minAgo: '{n} min ago',
      hoursAgo: '{n} h ago',
      notifyTitle: 'Approve this sign-in?',
      notifyBodyNumber: '{what}. Open the app to pick the number.',
      sentApprove: 'Approved',
      sentDeny: 'Denied',
      sendFailed: 'Could not send your answer. Open the app and try again.',
      language: 'Language',
    },
    'zh-TW': {
      title: 'mailotp 驗證器',
      loading: '載入中…',
      pairTitle: '配對這支手機',
      pairIntro: '在電腦上登入入口網站，開啟「設定」，選擇「綁定手機」，並在「裝置驗證碼」欄位輸入這組驗證碼。',
      codeLabel: '裝置驗證碼',
      codeWaiting: '等待輸入驗證碼…',
      codeExpired: '驗證碼已過期。',
      newCode: '取得新的驗證碼',
      pairUnavailable: '目前無法配對',
      linkTitle: '請點選電腦上顯示的數字',
      linkIntro: '正在為 {user} 配對這支手機。請點選電腦上顯示的數字。',
      linkGone: '這個配對連結已過期或已使用。請在電腦上重新開始。',
      linkWrong: '這不是電腦上顯示的數字，配對已取消。請在電腦上重新開始。',
      paired: '這支手機已配對。',
      unboundTitle: '這支手機已不再綁定',
      unboundText: '伺服器已清除這個裝置的權杖（裝置已被移除或取代），驗證請求不會再送到這裡。',
      recoveryUsedTitle: '已使用復原碼',
      recoveryUsedText: '有人使用復原碼登入 {user}，剩下 {left} 組。如果不是您本人，請立即變更密碼。',
      pairAgain: '重新配對',
      account: '正在為 {user} 核准（「{name}」）',
      pendingTitle: '等待您處理',
      noPending: '目前沒有需要核准的請求。',
      approve: '核准',
      deny: '拒絕',
      report: '這不是我',
      pickNumber: '請點選登入頁面上顯示的數字：',
      pushCode: '請在登入頁面輸入這組驗證碼，或點選「是」：',
      yes: '是',
      approved: '已核准。',
      denied: '已拒絕。',
      expired: '這個請求已過期。',
      reported: '已回報並拒絕。',
      gone: '這個請求已不再開放。',
      wrongNumber: '數字錯誤：請求已被拒絕。',
      serverError: '伺服器拒絕了這個操作：{detail}',
      networkError: '無法連線到伺服器。請檢查網路後再試一次。',
      approvalsTitle: '已核准的連線',
      noApprovals: '沒有已核准的連線。',
      approvalLine: '{ip}，核准於 {when}，有效至 {until}',
      revoke: '撤銷',
      revoked: '已撤銷核准。',
      live: '即時',
      offline: '重新連線中…',
      notifyOn: '開啟通知',
      notifyActive: '通知已開啟。',
      notifyDenied: '此網站的通知已被封鎖；請在瀏覽器設定中允許。',
      notifyIos: '要在 iPhone 或 iPad 上收到通知：點「分享」，再點「加入主畫面」，然後從主畫面開啟。',
      notifyUnsupported: '這個瀏覽器無法接收通知；請保持此頁面開啟以查看請求。',
      notifyFailed: '無法開啟通知：{detail}',
      connection: '{client} 透過 {protocol} 從 {ip} 連線',
      someClient: '郵件程式',
      login: '從 {ip} 登入網頁',
      justNow: '剛剛',
      minAgo: '{n} 分鐘前',
      hoursAgo: '{n} 小時前',
      notifyTitle: '要核准這次登入嗎？',
      notifyBodyNumber: '{what}。請開啟應用程式點選數字。',
      sentApprove: '已核准',
      sentDeny: '已拒絕',
      sendFailed: '無法送出您的回覆。請開啟應用程式再試一次。',
      language: '語言',
    },
  };

  /** 'zh-TW' for any Chinese preference, else 'en'; ?lang= wins over the browser's languages. */
  function pickLanguage(search, languages) {
    const asked = new URLSearchParams(search || '').get('lang');
    if (asked === 'en' || asked === 'zh-TW') return asked;
    for (const l of languages || []) {
      const low = String(l).toLowerCase();
      if (low.startsWith('zh')) return 'zh-TW';
      if (low.startsWith('en')) return 'en';
    }
    return 'en';
  }

  function makeT(lang) {
    const table = TEXTS[lang] || TEXTS.en;
    return function t(key, vars) {
      const text = table[key] !== undefined ? table[key] : TEXTS.en[key] !== undefined ? TEXTS.en[key] : key;
      return text.replace(/\{(\w+)\}/g, (m, name) => (vars && vars[name] !== undefined ? String(vars[name]) : m));
    };
  }

  /** "Thunderbird on IMAP from 203.0.113.7" from an API request object. */
  function describe(t, r) {
    if (r.type === 'login') return t('login', { ip: r.clientIp });
    return t('connection', { client: r.clientName || t('someClient'), protocol: String(r.protocol).toUpperCase(), ip: r.clientIp });
  }

  function ago(t, iso, now) {
    const mins = Math.floor((now - Date.parse(iso)) / 60000);
    if (!(mins >= 1)) return t('justNow');
    if (mins < 60) return t('minAgo', { n: mins });
    return t('hoursAgo', { n: Math.floor(mins / 60) });
  }

  root.mailotpI18n = { TEXTS, pickLanguage, makeT, describe, ago };
})(self);
