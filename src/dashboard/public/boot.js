// Loads the dashboard. A browser on a machine whose network interfaces change (Docker creating
// builder networks does that) aborts requests in flight with ERR_NETWORK_CHANGED, and a module
// that failed to load stays failed for the page's lifetime: so on failure, reload a few times.
const KEY = 'slipway.boot-attempts';

export async function loadOrReload(load, what) {
  try {
    const mod = await load();
    sessionStorage.removeItem(KEY);
    return mod;
  } catch (err) {
    const attempts = Number(sessionStorage.getItem(KEY) ?? '0');
    if (attempts < 5) {
      sessionStorage.setItem(KEY, String(attempts + 1));
      setTimeout(() => location.reload(), 300 * (attempts + 1));
    } else {
      sessionStorage.removeItem(KEY);
      const main = document.getElementById('main');
      const p = document.createElement('p');
      p.setAttribute('role', 'alert');
      p.textContent = `Could not load ${what} (${err?.message ?? err}). Check that slipway is reachable, then reload the page.`;
      main?.replaceChildren(p);
    }
    throw err;
  }
}

loadOrReload(() => import('./app.js'), 'the dashboard').catch(() => undefined);
