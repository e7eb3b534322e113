import { html, type HtmlValue, type SafeHtml } from './html.js';
import { LANGS, translator, type Lang, type TextKey, type Translate } from './texts.js';

/** What every page template gets. */
export interface PageContext {
  lang: Lang;
  t: Translate;
  /** The CSRF token for the page's forms. */
  csrf: string;
  /** The request path, for the language switch. */
  path: string;
}

export function pageContext(lang: Lang, csrf: string, path: string): PageContext {
  return { lang, t: translator(lang), csrf, path };
}

/** The hidden field every form carries. */
export function csrfField(ctx: PageContext): SafeHtml {
  return html`<input type="hidden" name="_csrf" value="${ctx.csrf}">`;
}

/** A POST form with its CSRF field and one submit button. */
export function postButton(ctx: PageContext, action: string, label: TextKey, opts: { hidden?: Record<string, string>; className?: string; describedBy?: string } = {}): SafeHtml {
  const hidden = Object.entries(opts.hidden ?? {}).map(([k, v]) => html`<input type="hidden" name="${k}" value="${v}">`);
  return html`<form method="post" action="${action}" class="inline">${csrfField(ctx)}${hidden}<button type="submit" class="${opts.className ?? ''}"${
    opts.describedBy ? html` aria-describedby="${opts.describedBy}"` : ''
  }>${ctx.t(label)}</button></form>`;
}

/** A page whose heading is its title; `body` follows `</h1>` as written (a leading newline where the page has one). */
export function titledPage(ctx: PageContext, title: TextKey, body: HtmlValue, header: HtmlValue = ''): SafeHtml {
  const text = ctx.t(title);
  return layout(ctx, text, html`<h1>${text}</h1>${body}`, header);
}

/** A page that says in one paragraph under its heading what it is for; `body` follows on the next line. */
export function introPage(ctx: PageContext, title: TextKey, intro: string, body: HtmlValue): SafeHtml {
  return titledPage(ctx, title, html`
<p>${intro}</p>
${body}`);
}

/** A page with a form: heading, intro, the form's refusal when there is one, then `body`. */
export function formPage(ctx: PageContext, title: TextKey, intro: string, error: TextKey | undefined, body: HtmlValue): SafeHtml {
  return introPage(ctx, title, intro, html`${errorNotice(ctx, error)}
${body}`);
}

/** A form page's refusal, above the form; nothing without one. */
export function errorNotice(ctx: PageContext, error: TextKey | undefined): SafeHtml | '' {
  return error ? html`<p class="notice error" role="alert">${ctx.t(error)}</p>` : '';
}

/** A settings card: a section labelled by its h2 (`${name}-h`); `anchor` is its id, for links to it. */
export function card(ctx: PageContext, name: string, title: TextKey, body: HtmlValue, anchor?: string): SafeHtml {
  return html`<section aria-labelledby="${name}-h" class="card"${anchor ? html` id="${anchor}"` : ''}>
<h2 id="${name}-h">${ctx.t(title)}</h2>
${body}
</section>`;
}

/**
 * A list as a table that stacks on narrow screens: one header per column, and `action` (read only by
 * screen readers) over the last column's buttons.
 */
export function stackTable(ctx: PageContext, head: { columns: readonly TextKey[]; action?: TextKey; testId?: string }, rows: HtmlValue): SafeHtml {
  const { t } = ctx;
  const columns = head.columns.map((c) => html`<th scope="col">${t(c)}</th>`);
  const action = head.action ? html`<th scope="col"><span class="sr-only">${t(head.action)}</span></th>` : '';
  return html`<table class="stack"${head.testId ? html` data-testid="${head.testId}"` : ''}><thead><tr>${columns}${action}</tr></thead><tbody>${rows}</tbody></table>`;
}

export function formatTime(ctx: PageContext, ms: number): SafeHtml {
  const text = new Intl.DateTimeFormat(ctx.lang, { dateStyle: 'medium', timeStyle: 'short' }).format(ms);
  return html`<time datetime="${new Date(ms).toISOString()}">${text}</time>`;
}

/** The whole document: head, language switch, the page's main content. No inline script or style (CSP). */
export function layout(ctx: PageContext, title: string, main: HtmlValue, header: HtmlValue = ''): SafeHtml {
  const switcher = LANGS.map((l) =>
    l === ctx.lang
      ? html`<li><span aria-current="true" lang="${l}">${translator(l)('langName')}</span></li>`
      : html`<li><a href="${ctx.path}?lang=${l}" lang="${l}" hreflang="${l}">${translator(l)('langName')}</a></li>`,
  );
  return html`<!doctype html>
<html lang="${ctx.lang}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="csrf-token" content="${ctx.csrf}">
<meta name="referrer" content="no-referrer">
<title>${title} · mailotp</title>
<link rel="stylesheet" href="/static/portal.css">
<link rel="icon" href="/static/icon.svg" type="image/svg+xml">
<script src="/static/portal.js" defer></script>
</head>
<body>
<a class="skip" href="#main">${ctx.t('skipToContent')}</a>
<header class="top">
<span class="brand">mailotp</span>
<nav aria-label="${ctx.t('language')}"><ul class="langs">${switcher}</ul></nav>
${header}
</header>
<main id="main" tabindex="-1">
${main}
</main>
</body>
</html>
`;
}
