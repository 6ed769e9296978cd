"""Runs real huggingface_hub and this package against one Hugging Face cache at the same time.

A fake hub (two loopback HTTP servers: the hub, and a "CDN" the ONNX file redirects to, both
answering slowly so that downloads overlap) serves the tiny ModernBERT fixture as
`test-org/tiny-colbert`, and a private copy that needs a token. Each scenario starts
`hf_hub_download` (in its own Python process) and `ColBERT.fromPretrained` (in a Node process,
from the built package) on a fresh cache, in some order, then checks:

- both clients succeed, and each "loads" what it got (Node: the model loads and encodes;
  Python: every JSON file parses and every file's bytes equal the fixture's);
- every blob in the cache hashes to its name (sha256 or git blob sha1), no `.incomplete` is left;
- which client downloaded which file (requests are told apart by their User-Agent);
- `huggingface_hub.scan_cache_dir` reports no warnings.

Needs no network beyond loopback. Usage, from the repository root after `npm run build`:

    python3 -m venv tools/.venv-hub && tools/.venv-hub/bin/pip install -r tools/requirements-hub.txt
    tools/.venv-hub/bin/python tools/hub_interop.py --out tools/hub_interop.md

`--package DIR` runs another checkout's build (e.g. an older commit) as the Node client.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "__test__" / "fixtures" / "tiny-modernbert"
REPO = "test-org/tiny-colbert"
PRIVATE = "test-org/private-colbert"
TOKEN = "hf_interop_secret"
# What a model folder needs (what ColBERT.fromPretrained fetches), in the order Python fetches it.
FILES = [
    "config.json",
    "config_sentence_transformers.json",
    "sentence_bert_config.json",
    "modules.json",
    "1_Dense/config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "model.onnx",
]
CHUNK = 8192
CHUNK_DELAY_S = 0.01  # about 800 KB/s: tokenizer.json takes ~0.25 s, model.onnx ~1.7 s


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def git_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def is_lfs(name: str) -> bool:
    return name.endswith(".onnx")


def read_fixture() -> dict[str, bytes]:
    files = {}
    for p in FIXTURE.rglob("*"):
        if p.is_file() and "golden" not in p.parts:
            files[p.relative_to(FIXTURE).as_posix()] = p.read_bytes()
    return files


class FakeHub:
    """The hub's API, resolve and CDN endpoints, as huggingface_hub and our client read them."""

    def __init__(self) -> None:
        files = read_fixture()
        self.repos = {
            REPO: {"sha": hashlib.sha1(REPO.encode()).hexdigest(), "files": files, "token": None},
            PRIVATE: {"sha": hashlib.sha1(PRIVATE.encode()).hexdigest(), "files": files, "token": TOKEN},
        }
        self.cdn_objects = {sha256(d): d for d in files.values()}
        self.log: list[dict] = []
        self.lock = threading.Lock()
        self.hub = ThreadingHTTPServer(("127.0.0.1", 0), self._handler("hub"))
        self.cdn = ThreadingHTTPServer(("127.0.0.1", 0), self._handler("cdn"))
        self.url = f"http://127.0.0.1:{self.hub.server_address[1]}"
        self.cdn_url = f"http://127.0.0.1:{self.cdn.server_address[1]}"
        for server in (self.hub, self.cdn):
            threading.Thread(target=server.serve_forever, daemon=True).start()

    def close(self) -> None:
        for server in (self.hub, self.cdn):
            server.shutdown()
            server.server_close()

    def _handler(self, which: str):
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # quiet
                pass

            def do_HEAD(self) -> None:
                self._handle(body=False)

            def do_GET(self) -> None:
                self._handle(body=True)

            def _handle(self, body: bool) -> None:
                agent = self.headers.get("User-Agent", "")
                entry = {
                    "server": which,
                    "method": self.command,
                    "path": unquote(self.path),
                    "range": self.headers.get("Range"),
                    "authorization": self.headers.get("Authorization") is not None,
                    "client": "node" if agent.startswith("colbert") else "python" if "hf_hub/" in agent else agent,
                }
                with hub.lock:
                    hub.log.append(entry)
                if which == "cdn":
                    data = hub.cdn_objects.get(self.path.rsplit("/", 1)[-1])
                    if data is None:
                        return self._plain(404)
                    return self._serve(data, {}, body)
                parts = unquote(self.path.split("?")[0]).lstrip("/").split("/")
                if parts[:2] == ["api", "models"] and len(parts) >= 6 and parts[4] == "revision":
                    repo = hub._repo(self, "/".join(parts[2:4]))
                    if repo is None:
                        return
                    payload = {
                        "id": "/".join(parts[2:4]),
                        "sha": repo["sha"],
                        "siblings": [{"rfilename": f} for f in sorted(repo["files"])],
                    }
                    raw = json.dumps(payload).encode()
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(raw)))
                    self.end_headers()
                    if body:
                        self.wfile.write(raw)
                    return
                if len(parts) >= 5 and parts[2] == "resolve":
                    repo = hub._repo(self, "/".join(parts[:2]))
                    if repo is None:
                        return
                    name = "/".join(parts[4:])
                    data = repo["files"].get(name)
                    if data is None or parts[3] not in ("main", repo["sha"]):
                        self.send_response(404)
                        self.send_header("X-Error-Code", "EntryNotFound")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    if is_lfs(name):
                        digest = sha256(data)
                        self.send_response(302)
                        self.send_header("Location", f"{hub.cdn_url}/lfs/{digest}")
                        self.send_header("X-Linked-Etag", f'"{digest}"')
                        self.send_header("X-Linked-Size", str(len(data)))
                        self.send_header("ETag", '"not-the-content-hash"')
                        self.send_header("X-Repo-Commit", repo["sha"])
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    return self._serve(data, {"ETag": f'"{git_sha1(data)}"', "X-Repo-Commit": repo["sha"]}, body)
                self._plain(404)

            def _plain(self, status: int) -> None:
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def _serve(self, data: bytes, headers: dict, body: bool) -> None:
                start = 0
                rng = self.headers.get("Range")
                if rng and rng.startswith("bytes=") and rng.endswith("-"):
                    start = int(rng[6:-1])
                if start > len(data):
                    return self._plain(416)
                part = data[start:]
                self.send_response(206 if rng else 200)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(part)))
                if rng:
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                self.end_headers()
                if not body:
                    return
                try:
                    for at in range(0, len(part), CHUNK):
                        self.wfile.write(part[at : at + CHUNK])
                        self.wfile.flush()
                        time.sleep(CHUNK_DELAY_S)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        return Handler

    def _repo(self, handler: BaseHTTPRequestHandler, repo_id: str):
        repo = self.repos.get(repo_id)
        if repo is None:
            handler.send_response(404)
            handler.send_header("X-Error-Code", "RepoNotFound")
            handler.send_header("Content-Length", "0")
            handler.end_headers()
            return None
        if repo["token"] and handler.headers.get("Authorization") != f"Bearer {repo['token']}":
            handler.send_response(401)
            handler.send_header("Content-Length", "0")
            handler.end_headers()
            return None
        return repo


# ---- the two clients, each in its own process -----------------------------------------------

NODE_CLIENT = r"""
const [pkg, repo, cacheDir] = process.argv.slice(1)
const { ColBERT } = require(pkg)
const started = Date.now()
ColBERT.fromPretrained(repo, { cacheDir, threads: 1 })
  .then(async (model) => {
    const e = await model.encode(['what is late interaction?'])
    console.log(JSON.stringify({ ok: true, seconds: (Date.now() - started) / 1000, rows: e.offsets[1], onnxPath: model.onnxPath }))
  })
  .catch((err) => {
    console.log(JSON.stringify({ ok: false, seconds: (Date.now() - started) / 1000, code: err.code, message: String(err.message).slice(0, 400) }))
  })
"""


def python_client(repo: str, cache_dir: str) -> dict:
    """`hf_hub_download` of every file, then a "load": JSON parses, bytes equal the fixture's."""
    from huggingface_hub import hf_hub_download

    started = time.time()
    fixture = read_fixture()
    problems = []
    try:
        for name in FILES:
            path = hf_hub_download(repo, name, cache_dir=cache_dir)
            data = Path(path).read_bytes()
            if name.endswith(".json"):
                try:
                    json.loads(data)
                except ValueError as e:
                    problems.append(f"{name}: {e}")
            if data != fixture[name]:
                problems.append(f"{name}: {len(data)} bytes, not the hub's {len(fixture[name])}-byte file")
    except Exception as e:  # noqa: BLE001 - recorded, not raised
        return {"ok": False, "seconds": round(time.time() - started, 2), "error": f"{type(e).__name__}: {str(e)[:400]}"}
    return {"ok": not problems, "seconds": round(time.time() - started, 2), "problems": problems}


def start_node(package: Path, repo: str, cache: Path, env: dict) -> subprocess.Popen:
    return subprocess.Popen(
        ["node", "-e", NODE_CLIENT, str(package / "dist" / "index.js"), repo, str(cache)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def start_python(repo: str, cache: Path, env: dict) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, __file__, "--python-client", repo, str(cache)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(proc: subprocess.Popen) -> dict:
    out, err = proc.communicate(timeout=300)
    lines = [line for line in out.splitlines() if line.startswith("{")]
    if not lines:
        return {"ok": False, "error": f"exit {proc.returncode}: {err.strip()[-400:]}"}
    return json.loads(lines[-1])


# ---- checks ---------------------------------------------------------------------------------


def cache_state(cache: Path, repo: str) -> dict:
    folder = cache / f"models--{repo.replace('/', '--')}"
    blobs = folder / "blobs"
    bad, partial = [], []
    for b in sorted(blobs.iterdir()) if blobs.exists() else []:
        if b.name.endswith(".incomplete"):
            partial.append(b.name)
            continue
        data = b.read_bytes()
        if (sha256(data) if len(b.name) == 64 else git_sha1(data)) != b.name:
            bad.append(b.name)
    locks = cache / ".locks" / folder.name
    from huggingface_hub import scan_cache_dir

    scan = scan_cache_dir(cache)
    return {
        "blobs": len(list(blobs.iterdir())) if blobs.exists() else 0,
        "corrupt_blobs": bad,
        "incomplete": partial,
        "lock_files": len(list(locks.iterdir())) if locks.exists() else 0,
        "scan_cache_dir_warnings": [str(w) for w in scan.warnings],
    }


def downloads(log: list[dict]) -> dict:
    """GETs per client of each file's bytes (hub resolve or CDN)."""
    by_hash = {sha256(d): n for n, d in read_fixture().items()}
    out: dict[str, dict[str, int]] = {}
    for e in log:
        if e["method"] != "GET" or "/api/" in e["path"]:
            continue
        name = by_hash.get(e["path"].rsplit("/", 1)[-1]) if e["server"] == "cdn" else e["path"].split("/resolve/", 1)[-1].split("/", 1)[-1]
        if name:
            out.setdefault(e["client"], {}).setdefault(name, 0)
            out[e["client"]][name] += 1
    return out


def run_scenario(hub: FakeHub, package: Path, name: str, first: str | None, delay: float, env: dict, repo: str = REPO) -> dict:
    cache = Path(tempfile.mkdtemp(prefix=f"hub-interop-{name}-"))
    with hub.lock:
        hub.log.clear()
    try:
        procs = {}
        order = ["python", "node"] if first != "node" else ["node", "python"]
        for i, who in enumerate(order):
            if i and first:
                time.sleep(delay)
            procs[who] = start_python(repo, cache, env) if who == "python" else start_node(package, repo, cache, env)
        results = {who: finish(p) for who, p in procs.items()}
        with hub.lock:
            log = list(hub.log)
        # Afterwards each client loads again from the cache the other may have written, offline.
        offline_env = {**env, "HF_HUB_OFFLINE": "1"}
        results["node_offline_after"] = finish(start_node(package, repo, cache, offline_env))
        results["python_offline_after"] = finish(start_python(repo, cache, offline_env))
        # Paths inside this temporary cache read as <cache>.
        results = json.loads(json.dumps(results).replace(str(cache), "<cache>"))
        return {
            "scenario": name,
            **results,
            "cache": cache_state(cache, repo),
            "downloads": downloads(log),
            # Exclusion at work: each file came down once, from one client, and the other used it.
            "each_file_downloaded_once": all(
                sum(d.get(f, 0) for d in downloads(log).values()) == 1 for f in FILES
            ),
            "authorization_sent_to_cdn": any(e["authorization"] for e in log if e["server"] == "cdn"),
        }
    finally:
        shutil.rmtree(cache, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--package", type=Path, default=ROOT, help="the built colbert checkout to run as the Node client")
    parser.add_argument("--rounds", type=int, default=3, help="repetitions of each concurrent scenario")
    parser.add_argument("--out", type=Path, help="also write the results here (Markdown with a JSON block)")
    parser.add_argument("--title", default="Hub cache interop run", help="the heading of this run in --out")
    parser.add_argument("--append", action="store_true", help="append to --out instead of replacing it")
    parser.add_argument("--python-client", nargs=2, metavar=("REPO", "CACHE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.python_client:
        print(json.dumps(python_client(*args.python_client)))
        return

    import huggingface_hub

    hub = FakeHub()
    home = Path(tempfile.mkdtemp(prefix="hub-interop-home-"))
    env = {
        **os.environ,
        "HF_ENDPOINT": hub.url,
        "HF_HOME": str(home),
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    }
    for k in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_TOKEN_PATH", "HF_HUB_OFFLINE", "HF_HUB_CACHE"):
        env.pop(k, None)
    results = []
    try:
        for r in range(args.rounds):
            results.append(run_scenario(hub, args.package, f"together-{r + 1}", None, 0, env))
            results.append(run_scenario(hub, args.package, f"python-first-{r + 1}", "python", 0.5, env))
            results.append(run_scenario(hub, args.package, f"node-first-{r + 1}", "node", 0.5, env))
        # Only the saved token (as `hf auth login` leaves it): a private repository, both clients.
        (home / "token").write_text(TOKEN + "\n")
        results.append(run_scenario(hub, args.package, "token-file-only", None, 0, env, repo=PRIVATE))
    finally:
        hub.close()
        shutil.rmtree(home, ignore_errors=True)

    def verdict(r: dict) -> bool:
        c = r["cache"]
        return all(r[k].get("ok") for k in ("node", "python", "node_offline_after", "python_offline_after")) and not (
            c["corrupt_blobs"] or c["incomplete"] or c["scan_cache_dir_warnings"] or r["authorization_sent_to_cdn"]
        )

    summary = {
        "huggingface_hub": huggingface_hub.__version__,
        "node_package": str(args.package),
        "passed": sum(verdict(r) for r in results),
        "scenarios": len(results),
        "results": results,
    }
    text = json.dumps(summary, indent=1)
    print(text)
    if args.out:
        lines = [
            f"## {args.title}",
            "",
            f"huggingface_hub {huggingface_hub.__version__}, Node client from `{args.package}`; "
            f"{summary['passed']} of {summary['scenarios']} scenarios clean.",
            "",
            "| scenario | node | python | node offline after | python offline after | corrupt blobs | files fetched by node / python | each file fetched once |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for r in results:

            def cell(x: dict) -> str:
                text = f"FAIL {x.get('code', '')} {x.get('message') or x.get('error') or x.get('problems')}"
                return "ok" if x.get("ok") else " ".join(text.replace("|", "/").split())[:160]

            gets = {k: sum(v.values()) for k, v in r["downloads"].items()}
            lines.append(
                f"| {r['scenario']} | {cell(r['node'])} | {cell(r['python'])} | {cell(r['node_offline_after'])} | "
                f"{cell(r['python_offline_after'])} | {len(r['cache']['corrupt_blobs'])} | {gets.get('node', 0)} / {gets.get('python', 0)} | "
                f"{'yes' if r['each_file_downloaded_once'] else 'no'} |"
            )
        lines += ["", "```json", text, "```", ""]
        if not args.append:
            lines = [
                "# huggingface_hub and colbert on one cache",
                "",
                "Recorded by `tools/hub_interop.py` (see its docstring): a loopback fake hub serving the tiny",
                f"ModernBERT fixture at ~{int(CHUNK / CHUNK_DELAY_S / 1000)} KB/s, real huggingface_hub (`hf_hub_download` of the",
                "files a model folder needs, then every JSON parsed and every file compared with the hub's) and",
                "`ColBERT.fromPretrained` + `encode`, each in its own process, on a fresh cache per scenario:",
                "started together, Python 0.5 s first, Node 0.5 s first; then each loads again offline",
                "(`HF_HUB_OFFLINE=1`). `token-file-only`: a private repository, the token only in",
                "`HF_HOME/token`. A scenario is clean when all four loads succeed, every blob hashes to its",
                "name, no `.incomplete` is left, `scan_cache_dir` has no warnings and no token reached the CDN.",
                "",
            ] + lines
        with args.out.open("a" if args.append else "w") as f:
            f.write("\n".join(lines))


if __name__ == "__main__":
    main()
