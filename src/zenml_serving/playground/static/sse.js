// Server-Sent Events over fetch(): EventSource cannot send an Authorization header, so the
// page reads the stream itself. SseParser follows the WHATWG "event stream interpretation"
// rules (https://html.spec.whatwg.org/multipage/server-sent-events.html); followEventStream
// reconnects with Last-Event-ID until the caller sees its final event.

/** Incremental parser: feed() text chunks, get complete events back. */
export class SseParser {
  constructor() {
    this.buffer = "";
    this.started = false;
    this.data = [];
    this.eventType = "";
    /** The last event ID buffer: persists across events, as the spec says. */
    this.lastEventId = "";
    /** Reconnection time in ms from a `retry:` field, or null. */
    this.retry = null;
  }

  /** Parse a chunk; return the events it completed ({type, data, id}). */
  feed(chunk) {
    let text = this.buffer + chunk;
    if (!this.started && text.length > 0) {
      this.started = true;
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    }
    const events = [];
    let start = 0;
    for (let i = 0; i < text.length; i++) {
      const c = text[i];
      if (c !== "\n" && c !== "\r") continue;
      if (c === "\r" && i === text.length - 1) break; // maybe half of CRLF: wait for more
      this._line(text.slice(start, i), events);
      if (c === "\r" && text[i + 1] === "\n") i++;
      start = i + 1;
    }
    this.buffer = text.slice(start);
    return events;
  }

  /** The stream ended: an event without its blank line is dropped, as the spec says. */
  end() {
    this.buffer = "";
    this.data = [];
    this.eventType = "";
  }

  _line(line, events) {
    if (line === "") {
      this._dispatch(events);
      return;
    }
    if (line[0] === ":") return; // comment
    const colon = line.indexOf(":");
    let field = line;
    let value = "";
    if (colon >= 0) {
      field = line.slice(0, colon);
      value = line.slice(colon + 1);
      if (value[0] === " ") value = value.slice(1);
    }
    if (field === "data") this.data.push(value);
    else if (field === "event") this.eventType = value;
    else if (field === "id") {
      if (!value.includes("\0")) this.lastEventId = value;
    } else if (field === "retry") {
      if (/^[0-9]+$/.test(value)) this.retry = Number(value);
    }
  }

  _dispatch(events) {
    const type = this.eventType || "message";
    this.eventType = "";
    if (this.data.length === 0) return;
    const data = this.data.join("\n");
    this.data = [];
    events.push({ type, data, id: this.lastEventId });
  }
}

/** Read a fetch() Response body as events. */
export async function* readEvents(response, parser = new SseParser()) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      yield* parser.feed(value);
    }
  } finally {
    parser.end();
    reader.releaseLock();
  }
}

export class StreamError extends Error {
  constructor(message, response) {
    super(message);
    this.response = response;
  }
}

function sleep(ms, signal) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => { clearTimeout(timer); resolve(); }, { once: true });
  });
}

/**
 * Follow an SSE URL until `isFinal(event)`, reconnecting after a drop with Last-Event-ID.
 *
 * options.fetch: (url, init) => Promise<Response> (adds auth; default window.fetch)
 * options.lastEventId: resume point for the first connection ("" for none)
 * options.onEvent(event), options.onState("open" | "reconnecting", detail)
 * options.signal: AbortSignal to stop following
 * options.retryMs: first reconnection delay (a `retry:` field replaces it)
 * options.maxFailures: consecutive failed connections before giving up
 * Resolves "final" or "aborted"; rejects StreamError on an HTTP error (4xx: not retried).
 */
export async function followEventStream(url, options = {}) {
  const doFetch = options.fetch || ((u, init) => fetch(u, init));
  const maxFailures = options.maxFailures ?? 8;
  let lastEventId = options.lastEventId || "";
  let delay = options.retryMs ?? 1000;
  let failures = 0;
  const signal = options.signal;
  while (!signal?.aborted) {
    let parser = null;
    try {
      const headers = { Accept: "text/event-stream" };
      if (lastEventId) headers["Last-Event-ID"] = lastEventId;
      const response = await doFetch(url, { headers, signal, cache: "no-store" });
      if (!response.ok) {
        if (response.status >= 400 && response.status < 500) {
          throw new StreamError(`stream answered ${response.status}`, response);
        }
        throw new Error(`stream answered ${response.status}`);
      }
      options.onState?.("open", { lastEventId });
      parser = new SseParser();
      parser.lastEventId = lastEventId;
      let received = 0;
      for await (const event of readEvents(response, parser)) {
        if (event.id) lastEventId = event.id;
        received += 1;
        failures = 0;
        options.onEvent?.(event);
        if (options.isFinal?.(event)) return "final";
      }
      // Ended before the final event: a dropped connection. Reconnect, but not forever
      // if the server keeps closing without sending anything.
      if (received === 0 && ++failures >= maxFailures) {
        throw new Error("the stream keeps ending before the final event");
      }
    } catch (error) {
      if (signal?.aborted) return "aborted";
      if (error instanceof StreamError || failures >= maxFailures) throw error;
      failures += 1;
      if (failures >= maxFailures) throw error;
    } finally {
      if (parser && parser.retry !== null) delay = parser.retry;
    }
    options.onState?.("reconnecting", { lastEventId, delay });
    await sleep(delay, signal);
  }
  return "aborted";
}
