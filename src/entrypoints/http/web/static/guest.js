// The guest's page (/w/{statusToken}): their number, place in line, estimate and status, live
// over the guest stream; cancel, and postpone where the server offers it.
import {
  api, connectionBanner, follow, languageSwitch, offers, problemText, t, translate, TERMINAL,
} from "./live.js";

const $ = (id) => document.getElementById(id);
const token = decodeURIComponent(location.pathname.replace(/^\/w\//, "").split("/")[0] || "");
const base = `/guest/waitings/${encodeURIComponent(token)}`;
const MAX_POSTPONE_PLACES = 5;

let waiting = null;
let storeName = null;
let gettingClose = false;
let stream = null;

function render() {
  if (!waiting) return;
  $("card").hidden = false;
  const status = waiting.status;
  document.body.dataset.status = status;
  $("status").dataset.status = status;
  $("status").textContent = t(`guest.${status}`);
  $("number").textContent = String(waiting.number);
  const inLine = status === "WAITING";
  $("rank-row").hidden = !inLine;
  $("estimate-row").hidden = !inLine;
  $("rank").textContent = inLine && waiting.rank ? t("guest.rankValue", { rank: waiting.rank }) : "";
  const minutes = waiting.estimatedWaitMinutes;
  $("estimate").textContent = minutes === null || minutes === undefined
    ? t("guest.estimateNone")
    : minutes === 0 ? t("guest.estimateNow") : t("guest.estimateValue", { minutes });
  $("party").textContent = t("party", { count: waiting.partySize });
  $("name").textContent = waiting.name || "";
  $("close-note").hidden = !(inLine && gettingClose);
  const active = !TERMINAL.has(status);
  $("actions").hidden = !active;
  $("postpone").disabled = !inLine;
  if (storeName) {
    $("store-name").textContent = storeName;
    document.title = `${storeName} · ${waiting.number}`;
  }
}

function apply(event) {
  const data = event.data;
  if (event.type === "rank" || (data.status === undefined && data.rank !== undefined)) {
    waiting = { ...waiting, ...data };
  } else if (data.status !== undefined) {
    waiting = data;
  }
  if (event.type === "getting_close") gettingClose = true;
  if (waiting && waiting.status !== "WAITING") {
    delete waiting.rank;
    delete waiting.estimatedWaitMinutes;
  }
  if (waiting && storeName === null) loadStoreName(waiting.storeId);
  render();
}

async function loadStoreName(storeId) {
  storeName = "";
  const answer = await api(`/stores/${storeId}`);
  if (answer.ok) {
    storeName = answer.data.name;
    render();
  }
}

let isRefused = false;

function refused() {
  isRefused = true;
  if (stream) stream.stop();
  $("card").hidden = true;
  $("banner").hidden = true;
  $("refused").textContent = t("error.guestLink");
  $("refused").hidden = false;
  document.body.dataset.status = "REFUSED";
}

async function act(path, body) {
  $("message").textContent = "";
  const answer = await api(`${base}/${path}`, { method: "POST", body });
  if (answer.ok) {
    waiting = answer.data;
    render();
  } else if (answer.status === 404) {
    refused();
  } else {
    $("message").textContent = problemText(answer);
  }
}

function wire() {
  $("cancel").addEventListener("click", () => {
    $("cancel").hidden = true;
    $("cancel-confirm").hidden = false;
  });
  $("cancel-no").addEventListener("click", () => {
    $("cancel").hidden = false;
    $("cancel-confirm").hidden = true;
  });
  $("cancel-yes").addEventListener("click", async () => {
    $("cancel-confirm").hidden = true;
    $("cancel").hidden = false;
    await act("cancel");
  });
  $("postpone").addEventListener("click", () => act("postpone", { places: Number($("postpone-places").value) }));
  languageSwitch($("lang"), () => {
    fillPostponeChoices();
    if (isRefused) refused();
    else render();
  });
}

function fillPostponeChoices() {
  const select = $("postpone-places");
  const chosen = select.value || "1";
  select.replaceChildren();
  for (let places = 1; places <= MAX_POSTPONE_PLACES; places += 1) {
    select.append(new Option(t("guest.postponePlaces", { places }), String(places)));
  }
  select.value = chosen;
}

async function showOffered() {
  const offered = await offers();
  $("postpone-box").hidden = !offered.has("POST /guest/waitings/{statusToken}/postpone");
}

function start() {
  translate();
  wire();
  fillPostponeChoices();
  if (!token) {
    refused();
    return;
  }
  showOffered();
  const banner = connectionBanner($("banner"));
  stream = follow(`${base}/events`, {
    onEvent: apply,
    onOpen: banner.open,
    onLost: banner.lost,
    onRefused: refused,
    done: () => waiting !== null && TERMINAL.has(waiting.status),
  });
}

start();
