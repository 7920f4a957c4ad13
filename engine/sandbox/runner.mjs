// The sandbox runner: Pyodide inside a Deno started with no permissions beyond reading the Pyodide
// folder, the snapshot and the one data file. JSON lines on stdin/stdout; every reply carries the
// nonce of the request it answers, so lines printed by sandboxed code can never pass for replies.
// After boot the loop is synchronous: promises and timers that sandboxed code schedules never run.
const D = globalThis.Deno;
const [indexDir, snapshotPath, dataPath] = D.args;
const stringify = JSON.stringify;
const parse = JSON.parse;
const encoder = new TextEncoder();
const decoder = new TextDecoder();
const writeOut = D.stdout.writeSync.bind(D.stdout);
const readIn = D.stdin.readSync.bind(D.stdin);
const readFile = D.readFileSync;
const exit = D.exit;
const now = () => performance.now();

function send(obj) {
  const bytes = encoder.encode(stringify(obj) + "\n");
  let off = 0;
  while (off < bytes.length) off += writeOut(bytes.subarray(off));
}

let pending = new Uint8Array(0);
function readLine() {
  for (;;) {
    const nl = pending.indexOf(10);
    if (nl >= 0) {
      const line = decoder.decode(pending.subarray(0, nl));
      pending = pending.slice(nl + 1);
      return line;
    }
    const chunk = new Uint8Array(1 << 16);
    const n = readIn(chunk);
    if (n === null) exit(0);
    const merged = new Uint8Array(pending.length + n);
    merged.set(pending);
    merged.set(chunk.subarray(0, n), pending.length);
    pending = merged;
  }
}

const init = parse(readLine());
const t0 = now();
const { loadPyodide } = await import(indexDir + "/pyodide.mjs");
const options = { indexURL: indexDir + "/", checkAPIVersion: true };
if (snapshotPath) options._loadSnapshot = readFile(snapshotPath);
const py = await loadPyodide(options);
if (!snapshotPath) py.runPython(init.prelude);
py.FS.mkdirTree("/halo");

// Per-call capture of stdout/stderr, capped here so a flood never reaches the host.
const capture = { out: [], outLen: 0, outCut: false, err: [], errLen: 0, errCut: false };
function sink(kind, cap) {
  return {
    write(buf) {
      const lenKey = kind + "Len";
      const room = cap - capture[lenKey];
      if (room > 0) {
        const part = buf.length > room ? buf.subarray(0, room) : buf;
        capture[kind].push(decoder.decode(part, { stream: true }));
        capture[lenKey] += part.length;
      }
      if (buf.length > Math.max(room, 0)) capture[kind + "Cut"] = true;
      return buf.length;
    },
  };
}
py.setStdout(sink("out", init.stdout_cap));
py.setStderr(sink("err", init.stderr_cap));

let current = null; // the request being served: its nonce and llm_query allowance
py.registerJsModule("halo_host", {
  llm_query(prompt, text) {
    if (current === null) return "\u0000error:llm_query is only available while code runs";
    if (current.llmCalls >= current.maxLlmCalls) {
      return `\u0000error:llm_query limit reached (${current.maxLlmCalls} calls per run_code call)`;
    }
    current.llmCalls += 1;
    send({ nonce: current.nonce, type: "llm_query", id: current.id, q: current.llmCalls, prompt: String(prompt), text: String(text) });
    const reply = parse(readLine());
    if (reply.q !== current.llmCalls) return "\u0000error:llm_query reply out of order";
    return reply.error !== undefined ? "\u0000error:" + String(reply.error) : String(reply.text);
  },
});
const haloExec = py.globals.get("_halo_exec");

for (const name of ["Deno", "fetch", "WebSocket", "Worker", "EventSource", "XMLHttpRequest", "BroadcastChannel"]) {
  try { delete globalThis[name]; } catch (_) { /* non-configurable: permissions still deny it */ }
}
send({ nonce: init.nonce, type: "ready", boot_ms: Math.round(now() - t0), snapshot: Boolean(snapshotPath) });

for (;;) {
  const req = parse(readLine());
  capture.out = []; capture.outLen = 0; capture.outCut = false;
  capture.err = []; capture.errLen = 0; capture.errCut = false;
  current = { nonce: req.nonce, id: req.id, llmCalls: 0, maxLlmCalls: req.max_llm_calls ?? 0 };
  let exitCode = 0;
  let fatal = false;
  try {
    py.FS.writeFile("/halo/data.json", req.data ? readFile(dataPath) : encoder.encode("null"));
    if (!req.data) py.FS.unlink("/halo/data.json");
    exitCode = haloExec(req.code);
  } catch (e) {
    fatal = true; // not a Python exception (those are handled in _halo_exec): the interpreter is unusable
    exitCode = 70;
    const msg = String(e && e.stack ? e.stack : e).slice(0, 2000);
    capture.err.push("\nsandbox runtime failure: " + msg);
  }
  send({
    nonce: req.nonce, type: "result", id: req.id, exit_code: exitCode, fatal,
    stdout: capture.out.join(""), stderr: capture.err.join(""),
    stdout_truncated: capture.outCut, stderr_truncated: capture.errCut, llm_calls: current.llmCalls,
  });
  current = null;
  if (fatal) exit(3);
}
