/** Every text of the portal pages, one table per language. `{name}` marks a value filled in at render. */
const en = {
  langName: 'English',
  language: 'Language',
  skipToContent: 'Skip to content',
  signInTitle: 'Sign in',
  signInIntro: 'Sign in with your mail account to manage your phone and the mail apps you approved.',
  userName: 'User name',
  password: 'Password',
  signIn: 'Sign in',
  badPassword: 'Wrong user name or password.',
  rateLimited: 'Too many failed sign-ins. Wait a while and try again.',
  pushLimited: 'Too many requests were sent to your phone. Wait a while and try again.',
  unavailable: 'Signing in is not possible right now. Try again in a moment.',
  approveTitle: 'Approve on your phone',
  approveIntro: 'A sign-in request was sent to your phone “{device}”. Open it and tap this number:',
  approveWaiting: 'Waiting for your phone…',
  approveDenied: 'The sign-in was denied on your phone.',
  approveExpired: 'Nobody answered the request in time.',
  continue: 'Continue',
  startAgain: 'Start again',
  cancel: 'Cancel',
  settingsTitle: 'Settings',
  signedInAs: 'Signed in as {user}',
  signOut: 'Sign out',
  phoneSection: 'Your phone',
  noPhone: 'No phone is bound yet. Bind one to approve sign-ins and mail apps with a tap.',
  deviceName: 'Name',
  boundSince: 'Bound since',
  lastUsed: 'Last used',
  never: 'never',
  clearDevice: 'Clear bound device',
  clearConfirmTitle: 'Clear the bound phone?',
  clearConfirmText: '“{device}” will no longer get requests. Mail apps that need approval are refused until you bind a phone again.',
  clearConfirm: 'Yes, clear it',
  cleared: 'The bound phone was cleared.',
  bindPhone: 'Bind a phone',
  bindIntro: 'Scan the QR code with your phone’s camera, or open the link on the phone. Then pick this number there:',
  qrAlt: 'Pairing QR code',
  pairLinkLabel: 'Pairing link',
  pairWaiting: 'Waiting for your phone… The link works once, until {time}.',
  pairWrong: 'A wrong number was picked on the phone, so this pairing was cancelled.',
  pairExpired: 'The pairing link expired.',
  pairExists: 'A phone is already bound. Clear it first.',
  bound: 'Your phone is bound.',
  codeSection: 'Or type the code your phone shows',
  deviceCode: 'Device verification code',
  codeHint: '9 digits, shown in the authenticator app on the phone (e.g. 123 456 789).',
  bind: 'Bind',
  codeNotFound: 'This code is unknown or has expired. Check the code on your phone.',
  codeLimited: 'Too many wrong codes. Wait ten minutes and try again.',
  daemonSection: 'Mail apps',
  daemonSwitch: 'Two-factor required for send/receive',
  daemonHelp: 'When on, a mail app that signs in from a new address waits until you approve it on your phone.',
  daemonFixedBound: 'Your administrator requires this for every user with a bound phone.',
  daemonFixedAll: 'Your administrator requires this for every user.',
  daemonFixedOff: 'Your administrator has turned approvals for mail apps off.',
  on: 'On',
  off: 'Off',
  save: 'Save',
  saved: 'Saved.',
  stepUp: 'To change this, sign out and sign in again, approving on your phone.',
  approvalsSection: 'Approved connections',
  noApprovals: 'No approved connections.',
  colUser: 'User',
  colAddress: 'Address',
  colClient: 'Client',
  colProtocol: 'Protocol',
  colUntil: 'Until',
  colWhen: 'When',
  colWhat: 'What',
  colOutcome: 'Outcome',
  revoke: 'Revoke',
  revokeLabel: 'Revoke the connection from {address}',
  revoked: 'The connection was revoked.',
  recentSection: 'Recent requests',
  noRecent: 'No requests yet.',
  unknownClient: 'unknown',
  typeLogin: 'Web sign-in',
  typeConnection: 'Mail app',
  statusApproved: 'Approved',
  statusDenied: 'Denied',
  statusExpired: 'Expired',
  statusPending: 'Waiting',
  formExpired: 'This page has expired. Go back, reload it and try again.',
  notFound: 'This page does not exist.',
  errorTitle: 'Something went wrong',
  home: 'Back to the start page',
} as const;

export type TextKey = keyof typeof en;
export type Texts = Record<TextKey, string>;

const zhTW: Texts = {
  langName: '繁體中文',
  language: '語言',
  skipToContent: '跳到主要內容',
  signInTitle: '登入',
  signInIntro: '使用您的郵件帳號登入，管理您的手機與已核准的郵件程式。',
  userName: '使用者名稱',
  password: '密碼',
  signIn: '登入',
  badPassword: '使用者名稱或密碼錯誤。',
  rateLimited: '登入失敗次數過多，請稍後再試。',
  pushLimited: '傳送到您手機的請求過多，請稍後再試。',
  unavailable: '目前無法登入，請稍後再試。',
  approveTitle: '請在手機上核准',
  approveIntro: '登入請求已傳送到您的手機「{device}」。請開啟並點選這個數字：',
  approveWaiting: '正在等候您的手機…',
  approveDenied: '此登入已在您的手機上被拒絕。',
  approveExpired: '請求逾時，沒有人回應。',
  continue: '繼續',
  startAgain: '重新開始',
  cancel: '取消',
  settingsTitle: '設定',
  signedInAs: '已登入為 {user}',
  signOut: '登出',
  phoneSection: '您的手機',
  noPhone: '尚未綁定手機。綁定後，只要輕點一下即可核准登入與郵件程式。',
  deviceName: '名稱',
  boundSince: '綁定時間',
  lastUsed: '上次使用',
  never: '從未',
  clearDevice: '解除綁定裝置',
  clearConfirmTitle: '要解除綁定這支手機嗎？',
  clearConfirmText: '「{device}」將不再收到請求。在您重新綁定手機之前，需要核准的郵件程式都會被拒絕。',
  clearConfirm: '是，解除綁定',
  cleared: '已解除綁定手機。',
  bindPhone: '綁定手機',
  bindIntro: '用手機相機掃描 QR 碼，或在手機上開啟連結，然後在手機上點選這個數字：',
  qrAlt: '配對 QR 碼',
  pairLinkLabel: '配對連結',
  pairWaiting: '正在等候您的手機…此連結只能使用一次，有效至 {time}。',
  pairWrong: '手機上點選了錯誤的數字，此次配對已取消。',
  pairExpired: '配對連結已過期。',
  pairExists: '已經綁定了一支手機，請先解除綁定。',
  bound: '您的手機已綁定。',
  codeSection: '或輸入手機上顯示的驗證碼',
  deviceCode: '裝置驗證碼',
  codeHint: '9 位數字，顯示在手機的驗證器程式中（例如 123 456 789）。',
  bind: '綁定',
  codeNotFound: '此驗證碼不存在或已過期，請核對手機上的驗證碼。',
  codeLimited: '錯誤的驗證碼太多次，請等候十分鐘後再試。',
  daemonSection: '郵件程式',
  daemonSwitch: '收發郵件需要雙重驗證',
  daemonHelp: '開啟後，郵件程式從新的位址登入時，需等您在手機上核准。',
  daemonFixedBound: '您的管理員要求所有已綁定手機的使用者開啟此功能。',
  daemonFixedAll: '您的管理員要求所有使用者開啟此功能。',
  daemonFixedOff: '您的管理員已關閉郵件程式的核准功能。',
  on: '開啟',
  off: '關閉',
  save: '儲存',
  saved: '已儲存。',
  stepUp: '若要變更此設定，請登出後重新登入，並在手機上核准。',
  approvalsSection: '已核准的連線',
  noApprovals: '沒有已核准的連線。',
  colUser: '使用者',
  colAddress: '位址',
  colClient: '用戶端',
  colProtocol: '協定',
  colUntil: '有效至',
  colWhen: '時間',
  colWhat: '項目',
  colOutcome: '結果',
  revoke: '撤銷',
  revokeLabel: '撤銷來自 {address} 的連線',
  revoked: '已撤銷連線。',
  recentSection: '最近的請求',
  noRecent: '目前沒有請求。',
  unknownClient: '不明',
  typeLogin: '網頁登入',
  typeConnection: '郵件程式',
  statusApproved: '已核准',
  statusDenied: '已拒絕',
  statusExpired: '已逾時',
  statusPending: '等候中',
  formExpired: '此頁面已過期。請返回、重新整理後再試一次。',
  notFound: '找不到此頁面。',
  errorTitle: '發生錯誤',
  home: '回到首頁',
};

export const LANGS = ['en', 'zh-TW'] as const;
export type Lang = (typeof LANGS)[number];

const TABLES: Record<Lang, Texts> = { en, 'zh-TW': zhTW };

/** A text with its `{name}` values filled in (plain text; the templates escape it). */
export type Translate = (key: TextKey, values?: Record<string, string>) => string;

export function translator(lang: Lang): Translate {
  const table = TABLES[lang];
  return (key, values) => table[key].replace(/\{(\w+)\}/g, (m, name: string) => values?.[name] ?? m);
}

/** `?lang=` first, then the remembered choice, then Accept-Language; any Chinese gets zh-TW. */
export function pickLang(query: unknown, cookie: string | undefined, acceptLanguage: string | undefined): Lang {
  const asked = typeof query === 'string' ? query : undefined;
  for (const v of [asked, cookie]) if (v && (LANGS as readonly string[]).includes(v)) return v as Lang;
  const ranked = (acceptLanguage ?? '')
    .split(',')
    .map((part, i) => {
      const [tag = '', ...params] = part.trim().split(';');
      const q = params.map((p) => /^\s*q=([\d.]+)/.exec(p)?.[1]).find(Boolean);
      return { tag: tag.toLowerCase(), q: q === undefined ? 1 : Number(q), i };
    })
    .filter((x) => x.tag && x.q > 0)
    .sort((a, b) => b.q - a.q || a.i - b.i);
  for (const { tag } of ranked) {
    if (tag === 'zh' || tag.startsWith('zh-')) return 'zh-TW';
    if (tag === 'en' || tag.startsWith('en-')) return 'en';
  }
  return 'en';
}
