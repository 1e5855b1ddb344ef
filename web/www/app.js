// The page: loads MNIST, trains a preset on the browser's GPU with live curves, classifies what the
// user draws and saves the model as a nabla checkpoint.
//
// Every call into the session returns a promise and the calls run one at a time (`exclusive`), so a
// classification asked for while training waits for the current training call to finish.
// URL parameters preset the form: ?preset=default&train=2000&test=1000&epochs=3&seed=7&report=10.
// `window.nabla` exposes the run's state to tests.

import init, { Mnist, Options, Session, presetNames } from "./pkg/nabla_web.js";
import { drawChart } from "./chart.js";
import { mnistPixels, showPixels } from "./digit.js";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const FILES = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"];

const state = {
  mnist: null,
  session: null,
  // The training loop under way (a promise), if any; Resume waits until it has ended.
  loop: null,
  starting: false,
  resetting: false,
  running: false,
  finished: false,
  // Steps per training call (and loss readback); anything but a positive number gives 20.
  reportEvery: Math.max(1, Math.floor(Number(params.get("report") ?? 20)) || 20),
  // Milliseconds spent in training calls, pauses excluded.
  trainMs: 0,
  steps: 0,
  curves: { loss: [], train: [], test: [], steps: 0 },
  last: null,
  timeTo97: null,
  adapterInfo: null,
};
// What tests read.
window.nabla = { ready: false, error: null, reports: [], probabilities: null, state };

let queue = Promise.resolve();
/** Runs `job` after every job queued before it. */
function exclusive(job) {
  const result = queue.then(job);
  queue = result.catch(() => {});
  return result;
}

function say(text, kind = "info") {
  const box = $("message");
  box.hidden = !text;
  box.textContent = text ?? "";
  box.className = `message ${kind}`;
}

function fail(error) {
  const text = error?.message ?? String(error);
  window.nabla.error = text;
  document.body.dataset.state = "error";
  say(text, "error");
  state.running = false;
  updateButtons();
}

function updateButtons() {
  const has = state.session !== null;
  const busy = state.starting || state.resetting || state.loop !== null;
  $("start").disabled = state.mnist === null || busy || state.finished;
  $("start").textContent = has && !state.finished ? "Resume" : "Start";
  $("pause").disabled = !state.running;
  $("reset").disabled = !has || state.starting || state.resetting;
  $("save").disabled = !has || busy;
}

async function fetchBytes(name) {
  const response = await fetch(`data/${name}`);
  if (!response.ok) {
    throw new Error(`data/${name}: ${response.status} ${response.statusText}. Build the page with ` +
      "`scripts/web.sh build`, which copies the MNIST files that `cargo run --release` fetched.");
  }
  return new Uint8Array(await response.arrayBuffer());
}

function readOptions() {
  const options = new Options($("preset").value);
  options.seed = Number($("seed").value);
  options.trainImages = Number($("train-images").value);
  options.testImages = Number($("test-images").value);
  options.epochs = Number($("epochs").value);
  options.reportEvery = state.reportEvery;
  return options;
}

function resetCurves() {
  state.curves = { loss: [], train: [], test: [], steps: 0 };
  state.last = null;
  state.trainMs = 0;
  state.steps = 0;
  state.timeTo97 = null;
  window.nabla.reports = [];
  for (const id of ["step", "speed", "loss", "test-accuracy", "time-to-97"]) $(id).textContent = "–";
  drawChart($("chart"), state.curves);
}

/** Adds a trainer report to the curves: the loss and accuracy of the steps since the last report. */
function record(report) {
  window.nabla.reports.push(report);
  if (report.kind === "epoch") {
    if (report.testAccuracy !== null) {
      state.curves.test.push([report.step, report.testAccuracy]);
      $("test-accuracy").textContent = `${(report.testAccuracy * 100).toFixed(2)}% after epoch ${report.epoch}`;
      if (state.timeTo97 === null && report.testAccuracy >= 0.97) {
        state.timeTo97 = state.trainMs / 1000;
        $("time-to-97").textContent = `${state.timeTo97.toFixed(1)} s`;
      }
    }
    return;
  }
  // Progress reports carry the epoch's running means; the window's mean is their difference.
  const last = state.last && state.last.epoch === report.epoch ? state.last : { stepInEpoch: 0, loss: 0, accuracy: 0 };
  const n = report.stepInEpoch - last.stepInEpoch;
  const windowLoss = (report.loss * report.stepInEpoch - last.loss * last.stepInEpoch) / n;
  const windowAcc = (report.accuracy * report.stepInEpoch - last.accuracy * last.stepInEpoch) / n;
  state.curves.loss.push([report.step, windowLoss]);
  state.curves.train.push([report.step, windowAcc]);
  state.last = report;
  $("loss").textContent = windowLoss.toFixed(4);
}

async function trainLoop(session) {
  while (state.running && !state.finished) {
    const began = performance.now();
    const answer = JSON.parse(await exclusive(() => session.train(state.reportEvery)));
    state.trainMs += performance.now() - began;
    state.steps = answer.steps;
    state.finished = answer.finished;
    answer.reports.forEach(record);
    state.curves.steps = answer.steps;
    $("step").textContent = String(answer.steps);
    $("speed").textContent = (state.steps / (state.trainMs / 1000)).toFixed(1);
    drawChart($("chart"), state.curves);
    // Let the page paint and handle input before the next steps.
    await new Promise((resolve) => setTimeout(resolve, 0));
  }
  state.running = false;
  if (state.finished) document.body.dataset.state = "finished";
}

async function start() {
  if (state.starting || state.resetting || state.loop) return;
  try {
    if (!state.session) {
      state.starting = true;
      updateButtons();
      document.body.dataset.state = "starting";
      say("Opening the GPU and uploading the images…");
      state.session = await Session.start(state.mnist, readOptions());
      // Browsers name their adapter through its vendor and architecture, which wgpu does not pass on.
      const info = state.adapterInfo;
      const name = [info?.vendor, info?.architecture].filter(Boolean).join(" ");
      $("adapter").textContent = `${name ? `${name}: ` : ""}${state.session.adapter}`;
      $("architecture").textContent = state.session.architecture;
      resetCurves();
      say("");
    }
    state.starting = false;
    state.running = true;
    document.body.dataset.state = "training";
    state.loop = trainLoop(state.session);
    updateButtons();
    await state.loop;
  } catch (error) {
    fail(error);
  } finally {
    state.starting = false;
    state.loop = null;
    updateButtons();
  }
}

function pause() {
  state.running = false;
  document.body.dataset.state = "paused";
  updateButtons();
}

async function reset() {
  state.running = false;
  state.resetting = true;
  updateButtons();
  // Let the loop finish its call, then free the session after every call queued before.
  await state.loop?.catch(() => {});
  await exclusive(() => {
    state.session?.free();
    state.session = null;
  });
  state.finished = false;
  state.resetting = false;
  resetCurves();
  document.body.dataset.state = "ready";
  updateButtons();
}

/** Queues `job(session)` for the current session; it is skipped if a reset freed that session first. */
function withSession(job) {
  const session = state.session;
  return exclusive(() => (session && session === state.session ? job(session) : null));
}

async function save() {
  try {
    const saved = await withSession(async (session) => ({
      bytes: await session.checkpoint(),
      preset: session.preset,
    }));
    if (!saved) return;
    const link = document.createElement("a");
    link.href = URL.createObjectURL(new Blob([saved.bytes], { type: "application/octet-stream" }));
    link.download = `nabla-${saved.preset}.safetensors`;
    link.click();
    setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
  } catch (error) {
    fail(error);
  }
}

function showProbabilities(probs) {
  const list = $("probabilities");
  list.replaceChildren();
  const best = probs ? probs.indexOf(Math.max(...probs)) : -1;
  for (let d = 0; d < 10; d++) {
    const p = probs ? probs[d] : 0;
    const item = document.createElement("li");
    item.className = d === best ? "best" : "";
    item.innerHTML = `<span class="digit">${d}</span><span class="bar" style="width:${(p * 240).toFixed(1)}px"></span>` +
      `<span>${(p * 100).toFixed(1)}%</span>`;
    list.append(item);
  }
}

async function classify() {
  const pixels = mnistPixels($("pad"));
  showPixels($("seen"), pixels);
  if (!pixels || !state.session) return;
  try {
    const answer = await withSession((session) => session.classify(pixels));
    if (!answer) return;
    const probs = Array.from(answer);
    window.nabla.probabilities = probs;
    showProbabilities(probs);
  } catch (error) {
    fail(error);
  }
}

function setUpPad() {
  const pad = $("pad");
  const ctx = pad.getContext("2d");
  const clear = () => {
    ctx.fillStyle = "black";
    ctx.fillRect(0, 0, pad.width, pad.height);
    showPixels($("seen"), null);
    showProbabilities(null);
    window.nabla.probabilities = null;
  };
  let drawing = false;
  const at = (e) => {
    const r = pad.getBoundingClientRect();
    return [(e.clientX - r.left) * (pad.width / r.width), (e.clientY - r.top) * (pad.height / r.height)];
  };
  pad.addEventListener("pointerdown", (e) => {
    drawing = true;
    pad.setPointerCapture(e.pointerId);
    ctx.beginPath();
    ctx.moveTo(...at(e));
  });
  pad.addEventListener("pointermove", (e) => {
    if (!drawing) return;
    ctx.strokeStyle = "white";
    ctx.lineWidth = 20;
    ctx.lineCap = ctx.lineJoin = "round";
    ctx.lineTo(...at(e));
    ctx.stroke();
  });
  const end = () => {
    if (drawing) classify();
    drawing = false;
  };
  pad.addEventListener("pointerup", end);
  pad.addEventListener("pointercancel", end);
  $("clear").addEventListener("click", clear);
  clear();
}

async function main() {
  setUpPad();
  resetCurves();
  for (const [id, key] of [["train-images", "train"], ["test-images", "test"], ["epochs", "epochs"], ["seed", "seed"]]) {
    if (params.has(key)) $(id).value = params.get(key);
  }
  // A browser may offer navigator.gpu and still no adapter (WebGPU behind a flag, or blocked).
  const adapter = await navigator.gpu?.requestAdapter({ powerPreference: "high-performance" });
  if (!adapter) {
    say("This browser offers no WebGPU adapter, and nabla trains with WebGPU. It is on by default in " +
      "Chrome and Edge 113 or later and in Safari 26; Firefox turns it on with dom.webgpu.enabled in " +
      "about:config, and Chromium on Linux needs --enable-unsafe-webgpu.", "error");
    document.body.dataset.state = "no-webgpu";
    window.nabla.error = "no WebGPU";
    return;
  }
  state.adapterInfo = adapter.info;
  await init();
  for (const name of presetNames()) $("preset").append(new Option(name, name));
  $("preset").value = params.get("preset") ?? "default";
  say("Loading MNIST…");
  const [trainImages, trainLabels, testImages, testLabels] = await Promise.all(FILES.map(fetchBytes));
  state.mnist = new Mnist(trainImages, trainLabels, testImages, testLabels);
  $("train-images").max = String(state.mnist.trainLen);
  $("test-images").max = String(state.mnist.testLen);
  say("");
  $("start").addEventListener("click", start);
  $("pause").addEventListener("click", pause);
  $("reset").addEventListener("click", reset);
  $("save").addEventListener("click", save);
  document.body.dataset.state = "ready";
  window.nabla.ready = true;
  updateButtons();
}

main().catch(fail);
