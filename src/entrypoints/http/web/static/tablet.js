// The store's tablet (/tablet#token=…): the day's list live over the store stream, the staff's
// actions, opening and closing (and pausing where the server offers it), registering a guest at
// the door (APP channel) with their link as text and QR code, and the day's stats where offered.
import qrcode from "./vendor/qrcode-generator.js";
import {
  api, clockTime, connectionBanner, el, fieldProblems, follow, has, languageSwitch, minutesSince,
  offers, problemText, t, translate, TERMINAL,
} from "./live.js";

const $ = (id) => document.getElementById(id);
const SVG = "http://www.w3.org/2000/svg";
const PROGRESS = { WAITING: 0, CALLED: 1, SEATED: 2, CANCELLED: 2, NO_SHOW: 2 };
const ACTIONS = { WAITING: ["call", "cancel"], CALLED: ["seat", "no_show", "cancel"] };
const ACTION_PATHS = { call: "call", seat: "seat", no_show: "no-show", cancel: "cancel" };
const CONFIRMED = new Set(["no_show", "cancel"]); // a second tap, so that a slip changes nothing
const PAUSE_MINUTES = [10, 30, 60, 120];
const PAGE_LIMIT = 500;

const token = new URLSearchParams(location.hash.slice(1)).get("token");
const claims = readClaims(token);
const storeId = claims && claims.storeId;

let store = null;
let waitings = new Map(); // id -> Waiting, today's, as the stream and the list told
// Queue order: the snapshot's, then newcomers by number (a new waiting goes last).
const NEWCOMER = 1e12;
let armed = null; // {id, action, until}: a cancel or no-show tapped once
let stream = null;
let canPause = false;
let canStats = false;

function readClaims(jwt) {
  if (!jwt) return null;
  try {
    const part = jwt.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const bytes = Uint8Array.from(atob(part.padEnd(Math.ceil(part.length / 4) * 4, "=")), (c) => c.charCodeAt(0));
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    return {};
  }
}

// ---- Refusals -------------------------------------------------------------------------------

let refusal = null; // the text key of why this page cannot go on

function refuse(key) {
  refusal = key;
  if (stream) stream.stop();
  $("work").hidden = true;
  $("controls").hidden = true;
  $("banner").hidden = true;
  $("refused").textContent = t(key);
  $("refused").hidden = false;
  $("refused").dataset.reason = key;
}

function refusedBy(status) {
  if (status === 401) return refuse(claims.exp * 1000 <= Date.now() ? "error.expired" : "error.badToken");
  if (status === 403) return refuse("error.otherStore");
  return refuse("error.storeMissing");
}

// A refused call: a sign-in that is no longer good ends the page; anything else is said beside it.
function told(answer, where) {
  if (answer.status === 401 || answer.status === 403) {
    refusedBy(answer.status);
    return;
  }
  const details = answer.data && answer.data.code === "VALIDATION_ERROR" ? fieldProblems(answer) : [];
  where.textContent = [problemText(answer), ...details].join(" ");
}

// ---- The list -------------------------------------------------------------------------------

function upsert(waiting) {
  const known = waitings.get(waiting.id);
  // Statuses only move forward: an older view (a list read that raced an event) never wins.
  if (known && PROGRESS[known.status] > PROGRESS[waiting.status]) return;
  const place = known ? known.place : (waiting.place ?? NEWCOMER + waiting.number);
  const merged = { ...known, ...waiting, place };
  if (merged.status !== "WAITING") {
    delete merged.rank;
    delete merged.estimatedWaitMinutes;
  }
  waitings.set(waiting.id, merged);
}

function fromSnapshot(data) {
  store = data.store;
  waitings = new Map();
  data.items.forEach((waiting, place) => upsert({ ...waiting, place }));
  loadDay();
}

// Today's finished waitings are not in the snapshot (it holds the active ones): read them.
async function loadDay() {
  let after = null;
  do {
    const query = new URLSearchParams({ limit: String(PAGE_LIMIT) });
    if (after) query.set("after", after);
    const answer = await api(`/stores/${storeId}/waitings?${query}`, { token });
    if (!answer.ok) return;
    for (const waiting of answer.data.items) upsert(waiting);
    after = answer.data.next;
  } while (after);
  render();
}

// A waiting's place in the queue, told by its rank (a newcomer's, or one who postponed).
function placeAt(id, rank) {
  const line = [...waitings.values()].filter((w) => w.status === "WAITING" && w.id !== id).sort((a, b) => a.place - b.place);
  line.splice(Math.max(0, rank - 1), 0, waitings.get(id));
  line.forEach((waiting, place) => {
    waiting.place = place;
  });
}

function apply(event) {
  const { type, data } = event;
  if (type === "snapshot") {
    fromSnapshot(data);
  } else if (data && data.waitingOpen !== undefined) {
    store = data; // opened, closed, paused, its settings changed
  } else if (data && data.number !== undefined && data.id !== undefined) {
    upsert(data);
    const waiting = waitings.get(data.id);
    if (waiting.status === "WAITING" && Number.isInteger(data.rank)) placeAt(data.id, data.rank);
  }
  render();
  if (canStats) statsSoon();
}

function sortedActive() {
  const active = [...waitings.values()].filter((w) => !TERMINAL.has(w.status));
  const called = active.filter((w) => w.status === "CALLED").sort((a, b) => (a.calledAt || "").localeCompare(b.calledAt || ""));
  const waiting = active.filter((w) => w.status === "WAITING").sort((a, b) => a.place - b.place);
  return { called, waiting };
}

function phone(e164) {
  if (!e164) return "";
  const national = e164.startsWith("+82") ? `0${e164.slice(3)}` : e164;
  return national.length === 11 ? `${national.slice(0, 3)}-${national.slice(3, 7)}-${national.slice(7)}` : national;
}

function guestCell(waiting) {
  const who = waiting.name || waiting.userId || "";
  const detail = [phone(waiting.phoneNumber), t(`channel.${waiting.channel}`)].filter(Boolean).join(" · ");
  return el("td", { className: "guest-cell" }, el("span", { className: "who", textContent: who }), el("small", { textContent: detail }));
}

function waitedText(waiting) {
  const minutes = minutesSince(waiting.createdAt);
  if (waiting.status === "CALLED" && waiting.calledAt) {
    return t("waited.called", { minutes, since: minutesSince(waiting.calledAt) });
  }
  return t("minutes", { minutes });
}

function actionButtons(waiting) {
  const cell = el("td", { className: "actions" });
  for (const action of ACTIONS[waiting.status] || []) {
    const isArmed = armed && armed.id === waiting.id && armed.action === action && armed.until > Date.now();
    cell.append(el("button", {
      type: "button",
      className: `act act-${action}${isArmed ? " armed" : ""}`,
      textContent: isArmed ? t("action.confirm") : t(`action.${action}`),
      dataset: { id: String(waiting.id), action },
    }));
  }
  return cell;
}

function row(waiting, rank) {
  const statusText = waiting.status === "WAITING" ? t("status.waitingRank", { rank }) : t(`status.${waiting.status}`);
  return el(
    "tr",
    { className: `row status-${waiting.status}`, dataset: { id: String(waiting.id), number: String(waiting.number), status: waiting.status } },
    el("td", { className: "num", textContent: String(waiting.number) }),
    guestCell(waiting),
    el("td", { className: "party", textContent: t("party", { count: waiting.partySize }) }),
    el("td", { className: "waited", textContent: waitedText(waiting) }),
    el("td", {}, el("span", { className: `pill pill-${waiting.status}`, textContent: statusText })),
    actionButtons(waiting),
  );
}

function doneRow(waiting) {
  const at = waiting.seatedAt || waiting.cancelledAt || waiting.noShowAt || waiting.createdAt;
  return el(
    "tr",
    { className: `row status-${waiting.status}`, dataset: { id: String(waiting.id), number: String(waiting.number), status: waiting.status } },
    el("td", { className: "num", textContent: String(waiting.number) }),
    guestCell(waiting),
    el("td", { className: "party", textContent: t("party", { count: waiting.partySize }) }),
    el("td", { textContent: clockTime(at, store && store.timeZone) }),
    el("td", {}, el("span", { className: `pill pill-${waiting.status}`, textContent: t(`status.${waiting.status}`) })),
  );
}

function render() {
  if (!store || refusal) return;
  renderStore();
  const { called, waiting } = sortedActive();
  $("rows").replaceChildren(...called.map((w) => row(w, null)), ...waiting.map((w, i) => row(w, i + 1)));
  $("empty").hidden = called.length + waiting.length > 0;
  $("counts").textContent = t("list.counts", { waiting: waiting.length, called: called.length });
  const done = [...waitings.values()].filter((w) => TERMINAL.has(w.status)).sort((a, b) => b.number - a.number);
  const count = (status) => done.filter((w) => w.status === status).length;
  $("done-summary").textContent = t("list.done", {
    count: done.length, seated: count("SEATED"), cancelled: count("CANCELLED"), noShow: count("NO_SHOW"),
  });
  $("done-rows").replaceChildren(...done.map(doneRow));
  renderStats();
}

// ---- The store: open, close, pause ------------------------------------------------------------

function pausedUntil() {
  const until = store && store.pausedUntil;
  return until && Date.parse(until) > Date.now() ? until : null;
}

function renderStore() {
  $("work").hidden = false;
  $("controls").hidden = false;
  $("store-name").textContent = store.name;
  document.title = `${store.name} · Waitline`;
  const paused = pausedUntil();
  const badge = $("store-state");
  badge.hidden = false;
  badge.dataset.state = !store.waitingOpen ? "closed" : paused ? "paused" : "open";
  badge.textContent = !store.waitingOpen
    ? t("state.closed")
    : paused ? t("state.paused", { time: clockTime(paused, store.timeZone) }) : t("state.open");
  $("open").hidden = store.waitingOpen && !paused;
  $("close").hidden = !store.waitingOpen;
  $("pause-box").hidden = !(canPause && store.waitingOpen && !paused);
  const notice = $("register-notice");
  notice.hidden = store.waitingOpen && !paused;
  notice.textContent = !store.waitingOpen
    ? t("register.closed")
    : paused ? t("register.paused", { time: clockTime(paused, store.timeZone) }) : "";
  notice.dataset.state = badge.dataset.state;
  $("register-submit").disabled = !store.waitingOpen || Boolean(paused);
  $("guest-party").max = String(store.maxPartySize || 10);
}

async function storeAction(path, body) {
  $("action-message").textContent = "";
  const answer = await api(`/stores/${storeId}/waiting/${path}`, { method: "POST", token, body });
  if (!answer.ok) return told(answer, $("action-message"));
  store = answer.data;
  render();
}

// ---- Moving a waiting along -------------------------------------------------------------------

async function move(id, action) {
  if (CONFIRMED.has(action) && !(armed && armed.id === id && armed.action === action && armed.until > Date.now())) {
    armed = { id, action, until: Date.now() + 3000 };
    render();
    setTimeout(render, 3100);
    return;
  }
  armed = null;
  $("action-message").textContent = "";
  const answer = await api(`/stores/${storeId}/waitings/${id}/${ACTION_PATHS[action]}`, { method: "POST", token });
  if (answer.ok) upsert(answer.data);
  else told(answer, $("action-message"));
  render();
}

// ---- Registering a guest at the door ----------------------------------------------------------

function qrSvg(text) {
  const qr = qrcode(0, "M");
  qr.addData(text);
  qr.make();
  const count = qr.getModuleCount();
  const margin = 4;
  const size = count + 2 * margin;
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", `0 0 ${size} ${size}`);
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", text);
  svg.dataset.modules = String(count);
  const background = document.createElementNS(SVG, "rect");
  background.setAttribute("width", String(size));
  background.setAttribute("height", String(size));
  background.setAttribute("fill", "#fff");
  let d = "";
  for (let r = 0; r < count; r += 1) {
    for (let c = 0; c < count; c += 1) {
      if (qr.isDark(r, c)) d += `M${c + margin} ${r + margin}h1v1h-1z`;
    }
  }
  const modules = document.createElementNS(SVG, "path");
  modules.setAttribute("d", d);
  modules.setAttribute("fill", "#000");
  svg.append(background, modules);
  return svg;
}

function showRegistered(waiting) {
  const link = `${location.origin}/w/${encodeURIComponent(waiting.statusToken)}`;
  $("registered-number").textContent = t("register.done", { number: waiting.number });
  $("registered-number").dataset.number = String(waiting.number);
  $("registered-who").textContent = t("register.who", { name: waiting.name, party: waiting.partySize });
  $("guest-link").textContent = link;
  $("guest-link").href = link;
  $("qr").replaceChildren(qrSvg(link));
  $("registered").hidden = false;
}

async function register(event) {
  event.preventDefault();
  const message = $("register-message");
  message.textContent = "";
  const body = {
    name: $("guest-name").value.trim(),
    phoneNumber: $("guest-phone").value.trim(),
    partySize: Number($("guest-party").value),
  };
  $("register-submit").disabled = true;
  const answer = await api(`/v2/app/stores/${storeId}/waitings`, { method: "POST", token, body });
  $("register-submit").disabled = false;
  if (!answer.ok) {
    $("registered").hidden = true;
    told(answer, message);
    render();
    return;
  }
  upsert(answer.data);
  $("register").reset();
  showRegistered(answer.data);
  render();
}

// ---- The day's stats (where the server offers them) --------------------------------------------

let statsTimer = null;

// Read again once the list has been still for a moment (and every minute in any case).
function statsSoon() {
  clearTimeout(statsTimer);
  statsTimer = setTimeout(loadStats, 1500);
}

let stats = null;

async function loadStats() {
  const answer = await api(`/stores/${storeId}/stats`, { token });
  if (!answer.ok || !answer.data) return;
  stats = answer.data;
  render();
}

function renderStats() {
  if (stats === null) return;
  $("stats-box").hidden = false;
  $("stats").replaceChildren(...statsView(stats));
}

function statLabel(key) {
  const words = key.replace(/([a-z0-9])([A-Z])/g, "$1 $2").toLowerCase();
  return has(`stat.${key}`) ? t(`stat.${key}`) : words;
}

function statValue(key, value) {
  if (/rate$/i.test(key) && value <= 1) return `${Math.round(value * 100)}%`;
  return Number.isInteger(value) ? String(value) : value.toFixed(1);
}

const NOT_A_FIGURE = /(Id|Date)$/; // what names the day rather than counts it

// Counts as tiles (an object with a `total` as one tile, its parts beside it; other objects part
// by part), the first series (numbers, or objects with a count) as a bar chart. Whatever else the
// server adds to its stats is shown the same way, under its own name.
function statsView(data) {
  const tiles = el("div", { className: "tiles" });
  let series = null;
  for (const [key, value] of Object.entries(data)) {
    if (NOT_A_FIGURE.test(key) || value === null || typeof value === "boolean") continue;
    if (typeof value === "number") {
      tiles.append(tile(key, statLabel(key), statValue(key, value)));
    } else if (Array.isArray(value)) {
      if (series === null) series = value.map(point).filter(Boolean);
    } else if (typeof value === "object" && typeof value.total === "number") {
      const parts = Object.entries(value).filter(([part, n]) => part !== "total" && typeof n === "number");
      const detail = parts.map(([part, n]) => `${statLabel(part)} ${statValue(part, n)}`).join(" · ");
      tiles.append(tile(key, statLabel(key), statValue(key, value.total), detail));
    } else if (typeof value === "object") {
      for (const [part, n] of Object.entries(value)) {
        if (typeof n === "number") tiles.append(tile(`${key}.${part}`, `${statLabel(key)} · ${statLabel(part)}`, statValue(part, n)));
      }
    }
  }
  const parts = [tiles];
  if (series && series.length) parts.push(el("p", { className: "small", textContent: t("stats.chart") }), barChart(series));
  return parts;
}

function tile(key, label, value, detail = "") {
  return el(
    "div",
    { className: "tile", dataset: { key } },
    el("strong", { textContent: value }),
    el("span", { textContent: label }),
    detail ? el("small", { textContent: detail }) : null,
  );
}

function point(item) {
  if (typeof item === "number") return { label: "", value: item };
  if (!item || typeof item !== "object") return null;
  const value = Object.values(item).find((v) => typeof v === "number");
  const when = Object.values(item).find((v) => typeof v === "string");
  if (value === undefined) return null;
  const label = when && !Number.isNaN(Date.parse(when)) ? clockTime(when, store && store.timeZone) : when || "";
  return { label, value };
}

function barChart(points) {
  const width = 300;
  const height = 100;
  const most = Math.max(1, ...points.map((p) => p.value));
  const step = width / Math.max(points.length, 12); // a short day keeps its bars narrow
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", `0 0 ${width} ${height + 14}`);
  svg.setAttribute("class", "chart");
  points.forEach((p, i) => {
    const bar = document.createElementNS(SVG, "rect");
    const h = (p.value / most) * height;
    bar.setAttribute("x", String(i * step + 1));
    bar.setAttribute("y", String(height - h));
    bar.setAttribute("width", String(Math.max(1, step - 2)));
    bar.setAttribute("height", String(h));
    const title = document.createElementNS(SVG, "title");
    title.textContent = `${p.label} ${p.value}`;
    bar.append(title);
    svg.append(bar);
  });
  const first = points[0].label;
  const last = points[points.length - 1].label;
  const labels = points.length > 1 ? [[0, first, "start"], [width, last, "end"]] : [[0, first, "start"]];
  for (const [x, text, anchor] of labels) {
    const label = document.createElementNS(SVG, "text");
    label.setAttribute("x", String(x));
    label.setAttribute("y", String(height + 12));
    label.setAttribute("text-anchor", anchor);
    label.textContent = text;
    svg.append(label);
  }
  return svg;
}

// ---- Start ------------------------------------------------------------------------------------

function wire() {
  languageSwitch($("lang"), () => {
    fillPauseChoices();
    if (refusal) refuse(refusal);
    else render();
  });
  $("rows").addEventListener("click", (event) => {
    const button = event.target.closest("button[data-action]");
    if (button) move(Number(button.dataset.id), button.dataset.action);
  });
  $("open").addEventListener("click", () => storeAction("open"));
  $("close").addEventListener("click", () => storeAction("close"));
  $("pause").addEventListener("click", () => storeAction("pause", { minutes: Number($("pause-minutes").value) }));
  $("register").addEventListener("submit", register);
  // Waiting times move on by themselves; so does a pause running out.
  setInterval(render, 15000);
}

function fillPauseChoices() {
  const select = $("pause-minutes");
  const chosen = select.value || String(PAUSE_MINUTES[1]);
  select.replaceChildren(...PAUSE_MINUTES.map((minutes) => new Option(t("store.pauseMinutes", { minutes }), String(minutes))));
  select.value = chosen;
}

async function showOffered() {
  const offered = await offers();
  canPause = offered.has("POST /stores/{storeId}/waiting/pause");
  canStats = offered.has("GET /stores/{storeId}/stats");
  render();
  if (canStats) {
    loadStats();
    setInterval(loadStats, 60000);
  }
}

function start() {
  translate();
  wire();
  fillPauseChoices();
  if (!token) return refuse("error.noToken");
  if (!claims || claims.role !== "store" || !Number.isInteger(storeId)) return refuse("error.badToken");
  if (!claims.exp || claims.exp * 1000 <= Date.now()) return refuse("error.expired");
  showOffered();
  const banner = connectionBanner($("banner"));
  stream = follow(`/stores/${storeId}/events`, {
    headers: { Authorization: `Bearer ${token}` },
    onEvent: apply,
    onOpen: banner.open,
    onLost: banner.lost,
    onRefused: refusedBy,
  });
  // The page says so when its sign-in runs out, rather than failing at the next tap.
  const left = claims.exp * 1000 - Date.now();
  if (left < 2 ** 31) setTimeout(() => refuse("error.expired"), left);
}

start();
