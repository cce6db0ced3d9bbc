// What both pages share: their texts in two languages, calls to the API, the live streams (SSE
// read over fetch, so that the tablet can send its bearer token), and what the server offers.
import { TEXTS } from "./texts.js";

const LANG_KEY = "waitline.lang";
export const TERMINAL = new Set(["SEATED", "CANCELLED", "NO_SHOW"]);

// ---- Texts ---------------------------------------------------------------------------------

let lang = chooseLanguage();

function chooseLanguage() {
  const asked = new URLSearchParams(location.search).get("lang");
  if (asked in TEXTS) return asked;
  let kept = null;
  try {
    kept = localStorage.getItem(LANG_KEY);
  } catch {
    // storage refused (private mode): the browser's language decides
  }
  if (kept in TEXTS) return kept;
  return (navigator.language || "ko").toLowerCase().startsWith("ko") ? "ko" : "en";
}

export function t(key, values = {}) {
  const text = TEXTS[lang][key] ?? TEXTS.en[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => String(values[name] ?? ""));
}

export function has(key) {
  return key in TEXTS[lang];
}

// Elements with data-t="key" show that text; data-t-placeholder="key" set their placeholder.
export function translate(root = document) {
  document.documentElement.lang = lang;
  for (const element of root.querySelectorAll("[data-t]")) element.textContent = t(element.dataset.t);
  for (const element of root.querySelectorAll("[data-t-placeholder]")) {
    element.placeholder = t(element.dataset.tPlaceholder);
  }
}

// A button that switches between Korean and English, then redraws with `redraw`.
export function languageSwitch(button, redraw) {
  button.addEventListener("click", () => {
    lang = lang === "ko" ? "en" : "ko";
    try {
      localStorage.setItem(LANG_KEY, lang);
    } catch {
      // not kept: the page still switches
    }
    translate();
    redraw();
  });
}

// ---- The API --------------------------------------------------------------------------------

// One call: {ok, status, data} where data is the answer's JSON (a problem when not ok), or
// {ok: false, status: 0} when the server could not be reached.
export async function api(path, { method = "GET", token = null, body = undefined } = {}) {
  const headers = { Accept: "application/json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
    });
  } catch {
    return { ok: false, status: 0, data: null };
  }
  let data = null;
  try {
    data = await response.json();
  } catch {
    // an empty or non-JSON answer
  }
  return { ok: response.ok, status: response.status, data };
}

// The words for a refused call: the problem's code when we have words for it.
export function problemText(answer) {
  if (answer.status === 0) return t("error.network");
  const code = answer.data && answer.data.code;
  if (code && has(`error.${code}`)) return t(`error.${code}`);
  return t("error.other", { status: answer.status });
}

// The form fields a VALIDATION_ERROR names, with the server's message for each.
export function fieldProblems(answer) {
  const errors = (answer.data && answer.data.errors) || [];
  return errors.map((e) => `${has(`field.${e.field}`) ? t(`field.${e.field}`) : e.field}: ${e.message}`);
}

// Which operations the server offers ("POST /stores/{storeId}/waiting/pause"), from its OpenAPI
// document: the pages show pause, postpone and stats only where the server has them.
let offered = null;
export async function offers() {
  if (offered === null) {
    offered = (async () => {
      const answer = await api("/schema/openapi.json");
      const found = new Set();
      if (!answer.ok || !answer.data || !answer.data.paths) return found;
      for (const [path, operations] of Object.entries(answer.data.paths)) {
        for (const method of Object.keys(operations)) found.add(`${method.toUpperCase()} ${path}`);
      }
      return found;
    })();
  }
  return offered;
}

// ---- Live streams ---------------------------------------------------------------------------

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const MAX_DELAY_MS = 30000;

// Splits text into complete lines (CR, LF or CRLF); the rest waits for the next chunk.
function lines(buffer) {
  const found = [];
  let start = 0;
  for (let i = 0; i < buffer.length; i += 1) {
    const c = buffer[i];
    if (c !== "\n" && c !== "\r") continue;
    if (c === "\r" && i + 1 === buffer.length) break; // a CRLF may be cut between chunks
    found.push(buffer.slice(start, i));
    if (c === "\r" && buffer[i + 1] === "\n") i += 1;
    start = i + 1;
  }
  return [found, buffer.slice(start)];
}

// Reads a text/event-stream body, calling `dispatch` with each event as the HTML standard's
// EventSource would ({type, data}), `onRetry` with each retry: field and `onId` with each id:.
export async function readEvents(body, dispatch, onRetry, onId) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let type = "";
  let data = [];
  const field = (line) => {
    if (line === "") {
      if (data.length) dispatch({ type: type || "message", data: data.join("\n") });
      type = "";
      data = [];
      return;
    }
    if (line.startsWith(":")) return;
    const colon = line.indexOf(":");
    const name = colon < 0 ? line : line.slice(0, colon);
    let text = colon < 0 ? "" : line.slice(colon + 1);
    if (text.startsWith(" ")) text = text.slice(1);
    if (name === "event") type = text;
    else if (name === "data") data.push(text);
    else if (name === "id" && !text.includes("\0")) onId(text);
    else if (name === "retry" && /^\d+$/.test(text)) onRetry(Number(text));
  };
  for (;;) {
    const { value, done } = await reader.read();
    // At the end a CR held back for a possible LF is a line end after all; what is left of a
    // line or an event without its blank line is dropped, as the standard says.
    let complete;
    [complete, buffer] = lines(done ? (buffer.endsWith("\r") ? `${buffer}\n` : "") : buffer + value);
    complete.forEach(field);
    if (done) return;
  }
}

// Follows a live stream until stop() or `done()` says there is nothing more to hear. A dropped
// connection is retried after the server's retry: delay (longer after each failure in a row)
// with Last-Event-ID, so the server replays what was missed or sends a fresh snapshot.
// Handlers: onEvent({type, data}) with data parsed from JSON; onOpen(); onLost();
// onRefused(status, problem) for an answer that retrying cannot change (400, 401, 403, 404).
export function follow(url, { headers = {}, onEvent, onOpen, onLost, onRefused, done = () => false }) {
  let lastEventId = null;
  let retryMs = 3000;
  let failures = 0;
  let stopped = false;
  let controller = null;

  // The server's delay at first, doubled with each failure in a row, a little jitter so that a
  // room full of tablets does not come back in the same millisecond.
  const pause = (ms) => sleep(Math.min(ms * 2 ** Math.min(failures - 1, 4), MAX_DELAY_MS) * (0.8 + Math.random() * 0.4));

  async function run() {
    while (!stopped) {
      controller = new AbortController();
      const sent = { Accept: "text/event-stream", ...headers };
      if (lastEventId !== null) sent["Last-Event-ID"] = lastEventId;
      let response = null;
      try {
        response = await fetch(url, { headers: sent, cache: "no-store", signal: controller.signal });
      } catch {
        // unreachable: retried below
      }
      if (stopped) return;
      if (response && [400, 401, 403, 404].includes(response.status)) {
        let problem = null;
        try {
          problem = await response.json();
        } catch {
          // no problem document
        }
        stopped = true;
        onRefused(response.status, problem);
        return;
      }
      if (response && response.ok) {
        failures = 0;
        onOpen();
        try {
          await readEvents(
            response.body,
            (event) => {
              let data = null;
              try {
                data = JSON.parse(event.data);
              } catch {
                return;
              }
              onEvent({ type: event.type, data });
            },
            (ms) => {
              retryMs = ms;
            },
            (id) => {
              lastEventId = id;
            },
          );
        } catch {
          // the connection broke mid-stream: retried below
        }
        if (stopped || done()) return;
      }
      failures += 1;
      onLost();
      const retryAfter = response && Number(response.headers.get("Retry-After"));
      await pause(retryAfter > 0 ? retryAfter * 1000 : retryMs);
    }
  }

  run();
  return {
    stop() {
      stopped = true;
      if (controller) controller.abort();
    },
  };
}

// ---- Small helpers --------------------------------------------------------------------------

export function minutesSince(iso, now = Date.now()) {
  return Math.max(0, Math.floor((now - Date.parse(iso)) / 60000));
}

export function clockTime(iso, timeZone) {
  const options = { hour: "2-digit", minute: "2-digit", hourCycle: "h23" };
  if (timeZone) options.timeZone = timeZone;
  try {
    return new Intl.DateTimeFormat(lang === "ko" ? "ko-KR" : "en-GB", options).format(new Date(iso));
  } catch {
    return new Date(iso).toLocaleTimeString();
  }
}

// An element with children; `props` become properties (className, textContent, dataset...).
export function el(tag, props = {}, ...children) {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "dataset") Object.assign(element.dataset, value);
    else element[key] = value;
  }
  element.append(...children.filter((child) => child !== null && child !== undefined));
  return element;
}

// A banner that says the live connection is lost, and clears itself once it is back.
export function connectionBanner(element) {
  let lost = false;
  return {
    lost() {
      lost = true;
      element.textContent = t("live.lost");
      element.className = "banner lost";
      element.hidden = false;
    },
    open() {
      if (!lost) return;
      lost = false;
      element.textContent = t("live.back");
      element.className = "banner back";
      setTimeout(() => {
        if (!lost) element.hidden = true;
      }, 2000);
    },
  };
}
