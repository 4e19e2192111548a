/**
 * The device-code page's one inline script (allowed by a per-response CSP nonce): polls the broker
 * at the interval it is told, copies the user code, and reports the end in words.
 */
// Every value the script needs comes from data- attributes; it writes with textContent only.
export const DEVICE_SCRIPT = `(() => {
  const root = document.getElementById('device');
  const status = document.getElementById('status');
  const copy = document.getElementById('copy');
  const code = document.getElementById('user-code');
  const expires = document.getElementById('expires');
  let url = root.dataset.poll;
  let wait = Number(root.dataset.interval) * 1000;
  if (expires) expires.textContent = new Date(expires.dateTime).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  if (copy && navigator.clipboard) {
    copy.hidden = false;
    copy.addEventListener('click', () => {
      navigator.clipboard.writeText(code.textContent.trim()).then(() => { copy.textContent = 'Copied'; });
    });
  }
  const finish = (text, ok) => {
    status.textContent = text;
    status.className = ok ? 'connected' : 'needs_consent';
    for (const el of document.querySelectorAll('.while-waiting')) el.hidden = true;
  };
  const poll = async () => {
    let res;
    let body = {};
    try {
      res = await fetch(url, { headers: { accept: 'application/json' }, credentials: 'same-origin', cache: 'no-store' });
      body = await res.json().catch(() => ({}));
    } catch {
      setTimeout(poll, wait);
      return;
    }
    if (res.ok && body.status === 'pending') {
      const next = new URL(body.pollUrl, location.href);
      url = next.pathname + next.search;
      wait = Math.max(1, Number(body.interval) || 5) * 1000;
      setTimeout(poll, wait);
    } else if (res.ok && body.status === 'connected') {
      finish('Connected' + (body.account ? ' as ' + body.account : '') + '. You can close this window.', true);
    } else if (res.ok) {
      finish(body.detail || 'The sign-in ended (' + body.status + ').', false);
    } else if (res.status === 503) {
      setTimeout(poll, Math.max(wait, (Number(res.headers.get('retry-after')) || 0) * 1000));
    } else {
      finish((body.detail || 'The broker answered HTTP ' + res.status + '.') + (body.code ? ' (' + body.code + ')' : ''), false);
    }
  };
  setTimeout(poll, wait);
})();`;
