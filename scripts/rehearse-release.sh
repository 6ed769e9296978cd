#!/usr/bin/env bash
# Release rehearsal against a real registry: the publish steps of .github/workflows/release.yml
# (napi pre-publish → the platform packages with their ONNX Runtime libraries, then the main
# package) run against a private registry on loopback (verdaccio, pinned in .ci/registry). Then,
# in empty projects with no other configuration than the registry's address, `npm install colbert`
# must give a working package (require, import, npx colbert --help, encode, index, search), and
# `npm install --os=linux --cpu=arm64` must resolve the arm64 package and nothing else. Prints the
# tarball sizes. Linux x64 only; needs the x64 addon (npm test) and the arm64 one
# (scripts/smoke/arm64.sh builds it) first. No tracked file changes (staging writes npm/<platform>/'s
# ignored build outputs), and the packages are published from a copy.
#
#   bash scripts/rehearse-release.sh
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
[ "$(uname -sm)" = "Linux x86_64" ] || { echo "rehearse-release.sh: Linux x64 only" >&2; exit 1; }
for f in colbert.linux-x64-gnu.node target/cross/linux-arm64-gnu/colbert.linux-arm64-gnu.node; do
  [ -f "$f" ] || { echo "rehearse-release.sh: $f is missing (npm test builds the x64 addon, scripts/smoke/arm64.sh the arm64 one)" >&2; exit 1; }
done

reg="$root/.ci/registry"
node "$root/scripts/npm-ci.mjs" "$reg" "the registry"

work="$(mktemp -d)"
pid=""
cleanup() {
  # The registry ends by our SIGTERM (wait returns 143): that is not a failure of the rehearsal.
  if [ -n "$pid" ]; then
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

# The registry: loopback only, its own storage, no uplinks (nothing is fetched from elsewhere).
port=$((20000 + RANDOM % 20000))
url="http://127.0.0.1:$port/"
mkdir -p "$work/storage"
cat > "$work/config.yaml" <<EOF
storage: $work/storage
auth:
  htpasswd:
    file: $work/htpasswd
    max_users: 10
uplinks: {}
# npmjs.org takes packages this large; verdaccio's default limit is 10 MB.
max_body_size: 200mb
packages:
  '**':
    access: \$all
    publish: \$authenticated
log: { type: stdout, format: pretty, level: warn }
EOF
"$reg/node_modules/.bin/verdaccio" --config "$work/config.yaml" --listen "127.0.0.1:$port" > "$work/verdaccio.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do curl -fs "${url}-/ping" >/dev/null 2>&1 && break; sleep 0.2; done
curl -fs "${url}-/ping" >/dev/null || { cat "$work/verdaccio.log" >&2; echo "the registry did not start" >&2; exit 1; }
token="$(curl -fs -X PUT -H 'content-type: application/json' \
  -d '{"name":"release","password":"rehearsal-only"}' "${url}-/user/org.couchdb.user:release" |
  node -e "let s='';process.stdin.on('data',(d)=>(s+=d)).on('end',()=>console.log(JSON.parse(s).token))")"
printf 'registry=%s\n//127.0.0.1:%s/:_authToken=%s\n' "$url" "$port" "$token" > "$work/npmrc"
export NPM_CONFIG_USERCONFIG="$work/npmrc"
echo "== registry at $url"

# What release.yml's publish job has in hand: the built loader, dist/, and npm/<platform>/ staged
# with each addon and ONNX Runtime library. Only the Linux packages can be built here; the napi
# config of the copy names those two targets (the real release publishes all five).
pkg="$work/colbert"
mkdir -p "$pkg"
cp -r package.json README.md LICENSE CHANGELOG.md bin dist native.js native.d.ts "$pkg/"
node scripts/stage-platform.mjs --platform linux-x64-gnu >/dev/null
node scripts/stage-platform.mjs --platform linux-arm64-gnu >/dev/null
mkdir -p "$pkg/npm"
cp -r npm/linux-x64-gnu npm/linux-arm64-gnu "$pkg/npm/"
node -e "
const fs = require('fs'); const p = JSON.parse(fs.readFileSync('$pkg/package.json', 'utf8'))
fs.writeFileSync('$work/napi.json', JSON.stringify({ ...p.napi, targets: ['x86_64-unknown-linux-gnu', 'aarch64-unknown-linux-gnu'] }))"
echo "== napi pre-publish (platform packages) and npm publish (main package)"
(cd "$pkg" && node "$root/node_modules/@napi-rs/cli/dist/cli.js" pre-publish -t npm --no-gh-release -c "$work/napi.json")
(cd "$pkg" && npm publish --ignore-scripts --no-provenance)

check() {
  local app="$1"
  shift
  mkdir -p "$app"
  (cd "$app" && echo '{ "name": "app", "private": true }' > package.json && npm install --no-audit --no-fund "$@" colbert)
}

echo "== npm install colbert (this machine: linux x64)"
app="$work/app"
check "$app"
ls "$app/node_modules" | grep -q '^colbert-linux-x64-gnu$' || { echo "the x64 package was not installed" >&2; exit 1; }
! ls "$app/node_modules" | grep -q '^colbert-linux-arm64-gnu$' || { echo "the arm64 package was installed on x64" >&2; exit 1; }
cp scripts/smoke/smoke.mjs "$app/"
(cd "$app" && env -u COLBERT_ORT_DYLIB_PATH -u ORT_DYLIB_PATH -u NAPI_RS_NATIVE_LIBRARY_PATH node smoke.mjs "$root/__test__/fixtures/tiny-modernbert")
(cd "$app" && npx --no-install colbert --help | head -1)
(cd "$app" && npx --no-install colbert --version)

echo "== npm install --os=linux --cpu=arm64 --libc=glibc colbert"
arm="$work/arm"
check "$arm" --os=linux --cpu=arm64 --libc=glibc
installed="$(ls "$arm/node_modules" | grep '^colbert' | tr '\n' ' ')"
[ "$installed" = "colbert colbert-linux-arm64-gnu " ] || { echo "expected colbert and colbert-linux-arm64-gnu, got: $installed" >&2; exit 1; }
file "$arm/node_modules/colbert-linux-arm64-gnu/colbert.linux-arm64-gnu.node" | grep -q 'ARM aarch64' || { echo "the arm64 package holds no arm64 addon" >&2; exit 1; }
echo "resolved: $installed"

# README ("Install") documents these bounds: the main package under 200 kB, a platform package
# (addon + ONNX Runtime + notices) under 25 MB.
echo "== tarball sizes (bytes as published; bound)"
for spec in colbert:200000 colbert-linux-x64-gnu:25000000 colbert-linux-arm64-gnu:25000000; do
  name="${spec%%:*}"
  npm view "$name" dist --json |
    node -e "let s='';process.stdin.on('data',(d)=>(s+=d)).on('end',async()=>{
      const b=(await (await fetch(JSON.parse(s).tarball)).arrayBuffer()).byteLength
      console.log('$name', b, '≤', ${spec##*:})
      if (b > ${spec##*:}) { console.error('$name is larger than README says'); process.exit(1) }})"
done
echo "rehearsal: ok"
