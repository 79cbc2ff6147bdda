// HTTP client of the page: every call is relative to the page's <base> (so the service may sit
// under a path prefix) and carries `Authorization: Bearer <key>` once a key is known. A 401
// asks for the key (one dialog, however many calls are waiting), keeps it in sessionStorage
// (this tab only, never localStorage) and retries the call.

const KEY_ITEM = "zenml-serving.playground.api-key";

export class ApiClient {
  /**
   * @param {string} base the page's base URL (document.baseURI: ".../playground/")
   * @param {(rejected: boolean, challenge: string) => Promise<string|null>} askKey
   */
  constructor(base, askKey) {
    this.base = base;
    this.askKey = askKey;
    this.pendingKey = null;
    this.onKeyChange = () => {};
  }

  /** Absolute URL of an API path such as "invoke" or "jobs/ID" (relative to the service). */
  url(path) {
    return new URL("../" + path.replace(/^\/+/, ""), this.base).href;
  }

  get key() {
    try {
      return sessionStorage.getItem(KEY_ITEM) || "";
    } catch {
      return "";
    }
  }

  set key(value) {
    try {
      if (value) sessionStorage.setItem(KEY_ITEM, value);
      else sessionStorage.removeItem(KEY_ITEM);
    } catch {
      // storage disabled: the key lives as long as nothing asks again
    }
    this.onKeyChange(Boolean(value));
  }

  /** fetch() with auth; on 401 ask for a key (once for all waiting calls) and retry. */
  async fetch(path, init = {}) {
    const url = /^https?:/.test(path) ? path : this.url(path);
    for (;;) {
      const sentKey = this.key;
      const headers = new Headers(init.headers || {});
      if (sentKey) headers.set("Authorization", `Bearer ${sentKey}`);
      const response = await fetch(url, { ...init, headers });
      if (response.status !== 401) return response;
      if (this.key && this.key !== sentKey) continue; // another call already got a new key
      const key = await this._promptOnce(Boolean(sentKey), response.headers.get("WWW-Authenticate") || "");
      if (!key) return response;
    }
  }

  _promptOnce(rejected, challenge) {
    if (!this.pendingKey) {
      this.pendingKey = this.askKey(rejected, challenge).then((key) => {
        this.pendingKey = null;
        if (key) this.key = key;
        return key;
      });
    }
    return this.pendingKey;
  }

  /** A JSON call: resolves {response, body} with body parsed when the answer is JSON. */
  async json(path, { method = "GET", body, signal } = {}) {
    const headers = { Accept: "application/json, application/problem+json" };
    const init = { method, headers, signal };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const response = await this.fetch(path, init);
    const text = await response.text();
    let parsed = null;
    if (text) {
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = { title: `HTTP ${response.status}`, detail: text.slice(0, 500) };
      }
    }
    return { response, body: parsed };
  }
}

/** One line of shell for a request: single-quoted, so nothing in it is expanded by the shell. */
export function curlLine({ url, body, withKey }) {
  const quote = (s) => "'" + String(s).replace(/'/g, "'\\''") + "'";
  const parts = ["curl", "-sS", "-X", "POST", quote(url), "-H", quote("Content-Type: application/json")];
  if (withKey) parts.push("-H", '"Authorization: Bearer $ZENML_SERVING_AUTH_KEY"');
  parts.push("-d", quote(JSON.stringify(body)));
  return parts.join(" ");
}
