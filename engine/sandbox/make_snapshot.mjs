// Boot Pyodide once with the prelude and write its memory snapshot (run by `halo sandbox setup`).
const [indexDir, preludePath, outPath] = Deno.args;
const { loadPyodide } = await import(indexDir + "/pyodide.mjs");
const py = await loadPyodide({ indexURL: indexDir + "/", _makeSnapshot: true });
py.runPython(new TextDecoder().decode(Deno.readFileSync(preludePath)));
Deno.writeFileSync(outPath, py.makeMemorySnapshot());
