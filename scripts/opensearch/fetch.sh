#!/usr/bin/env bash
# Fetch and install the OpenSearch server used by the scale-out tests (issue 16):
# the no-JDK integ-test distribution 3.5.0 plus the k-NN plugin 3.5.0.0, both
# from Maven Central through Maven (the one 3.x version where both exist).
#
#   scripts/opensearch/fetch.sh        # prints the install path on its last line
#
# Idempotent: a stamp file marks a finished install and makes a second run instant.
# Cache: ${COLBERT_OPENSEARCH_CACHE:-$HOME/.cache/colbert-opensearch} (outside the repo).
# Needs: mvn, unzip, a JDK >= 21 (OPENSEARCH_JAVA_HOME, JAVA_HOME or /usr/lib/jvm/*).
set -euo pipefail

OS_VERSION=3.5.0
KNN_VERSION=3.5.0.0
SERVER_GAV="org.opensearch.distribution.integ-test-zip:opensearch:${OS_VERSION}"
KNN_GAV="org.opensearch.plugin:opensearch-knn:${KNN_VERSION}"
# SHA-1 of each zip. Maven Central publishes a .sha1 for the k-NN zip (it is
# checked against it too); for the server zip it serves none (404), so the value
# pinned here, computed from the zip Central served, is the reference.
SERVER_SHA1=c7e501f75a9b9b08e82e7fdd500ed3998080a599
KNN_SHA1=20608161a60d995d58f83afef375ab34f5d019ae

CACHE="${COLBERT_OPENSEARCH_CACHE:-$HOME/.cache/colbert-opensearch}"
INSTALL="$CACHE/opensearch-${OS_VERSION}"
STAMP="$CACHE/.installed-opensearch-${OS_VERSION}-knn-${KNN_VERSION}"

die() { echo "fetch.sh: error: $*" >&2; exit 1; }
say() { echo "fetch.sh: $*" >&2; }

# --- JDK >= 21 -----------------------------------------------------------------
java_major() { # $1 = JDK home; prints the feature version or nothing
  local home="$1" v=""
  [ -x "$home/bin/java" ] || return 0
  if [ -f "$home/release" ]; then
    v=$(sed -n 's/^JAVA_VERSION="\([^"]*\)".*/\1/p' "$home/release")
  fi
  if [ -z "$v" ]; then
    v=$("$home/bin/java" -XshowSettings:properties -version 2>&1 |
      sed -n 's/^ *java.specification.version = //p')
  fi
  v="${v#1.}"
  echo "${v%%[.+-]*}"
}
find_jdk() {
  local c m
  for c in "${OPENSEARCH_JAVA_HOME:-}" "${JAVA_HOME:-}" /usr/lib/jvm/*; do
    [ -n "$c" ] && [ -d "$c" ] || continue
    m=$(java_major "$c")
    if [ -n "$m" ] && [ "$m" -ge 21 ] 2>/dev/null; then echo "$c"; return 0; fi
  done
  return 1
}
JDK=$(find_jdk) || die "no JDK >= 21 found (OpenSearch ${OS_VERSION} needs one). Set OPENSEARCH_JAVA_HOME to a JDK 21+ home, or install one (e.g. a Temurin 21/25 JDK under /usr/lib/jvm)."

# --- fast path -------------------------------------------------------------------
if [ -f "$STAMP" ] && [ -x "$INSTALL/bin/opensearch" ] && [ -d "$INSTALL/plugins/opensearch-knn" ]; then
  echo "$INSTALL"
  exit 0
fi

command -v mvn >/dev/null 2>&1 || die "Maven (mvn) is not on PATH; it fetches the OpenSearch zips from Maven Central (apt-get install maven)."
command -v unzip >/dev/null 2>&1 || die "unzip is not on PATH (apt-get install unzip)."
command -v sha1sum >/dev/null 2>&1 || die "sha1sum is not on PATH (coreutils)."

mkdir -p "$CACHE"
DL="$CACHE/downloads"
mkdir -p "$DL"

mvn_copy() { # $1 = artifact coordinate (g:a:v:type), $2 = output dir; extra args after
  local art="$1" out="$2"; shift 2
  local log; log=$(mktemp)
  if ! mvn -q -B "$@" dependency:copy -Dartifact="$art" -DoutputDirectory="$out" >"$log" 2>&1; then
    MVN_LOG=$(grep -E '^\[ERROR\] [^ ]' "$log" | head -3 || true)
    rm -f "$log"
    return 1
  fi
  rm -f "$log"
}

fetch_verified() { # $1 = g:a:v, $2 = file name, $3 = pinned sha1
  local gav="$1" file="$2" pinned="$3" got published=""
  if [ ! -f "$DL/$file" ]; then
    say "fetching $gav:zip with Maven"
    mvn_copy "$gav:zip" "$DL" || die "Maven could not fetch $gav:zip: ${MVN_LOG:-}"
  fi
  # Central's .sha1 for the zip, when it publishes one (-U retries a lookup that
  # an earlier run cached as missing).
  rm -f "$DL/$file.sha1"
  if mvn_copy "$gav:zip.sha1" "$DL" -U && [ -f "$DL/$file.sha1" ]; then
    published=$(tr -dc '0-9a-f' <"$DL/$file.sha1" | head -c 40)
  fi
  got=$(sha1sum "$DL/$file" | cut -d' ' -f1)
  if [ -n "$published" ] && [ "$got" != "$published" ]; then
    rm -f "$DL/$file"
    die "$file: sha1 $got does not match Maven Central's .sha1 $published (file removed; run again)"
  fi
  if [ "$got" != "$pinned" ]; then
    rm -f "$DL/$file"
    die "$file: sha1 $got does not match the pinned $pinned (file removed; run again)"
  fi
  if [ -n "$published" ]; then say "$file: sha1 ok (Maven Central .sha1 and pinned)"
  else say "$file: sha1 ok (pinned; Maven Central publishes no .sha1 for it)"; fi
}

fetch_verified "$SERVER_GAV" "opensearch-${OS_VERSION}.zip" "$SERVER_SHA1"
fetch_verified "$KNN_GAV" "opensearch-knn-${KNN_VERSION}.zip" "$KNN_SHA1"

# --- unpack ------------------------------------------------------------------------
rm -f "$STAMP"
if [ ! -x "$INSTALL/bin/opensearch" ]; then
  say "unpacking the server to $INSTALL"
  TMP_UNPACK="$CACHE/.unpack.$$"
  rm -rf "$TMP_UNPACK" "$INSTALL"
  trap 'rm -rf "$TMP_UNPACK"' EXIT
  mkdir -p "$TMP_UNPACK"
  unzip -q "$DL/opensearch-${OS_VERSION}.zip" -d "$TMP_UNPACK"
  [ -x "$TMP_UNPACK/opensearch-${OS_VERSION}/bin/opensearch" ] || die "unexpected zip layout: no opensearch-${OS_VERSION}/bin/opensearch"
  mv "$TMP_UNPACK/opensearch-${OS_VERSION}" "$INSTALL"
  rm -rf "$TMP_UNPACK"
  trap - EXIT
fi

# --- k-NN plugin -----------------------------------------------------------------------
if [ ! -d "$INSTALL/plugins/opensearch-knn" ]; then
  say "installing the k-NN plugin"
  if ! OPENSEARCH_JAVA_HOME="$JDK" "$INSTALL/bin/opensearch-plugin" install --batch \
      "file://$DL/opensearch-knn-${KNN_VERSION}.zip" >"$CACHE/plugin-install.log" 2>&1; then
    cat "$CACHE/plugin-install.log" >&2
    die "opensearch-plugin install failed (log above)"
  fi
fi
OPENSEARCH_JAVA_HOME="$JDK" "$INSTALL/bin/opensearch-plugin" list 2>/dev/null | grep -qx 'opensearch-knn' ||
  die "the k-NN plugin is not listed by opensearch-plugin list"

# Everything world-readable (the nodes run as an unprivileged user when we are root).
chmod -R a+rX "$INSTALL"

printf 'opensearch %s\nopensearch-knn %s\njdk %s\n' "$OS_VERSION" "$KNN_VERSION" "$JDK" >"$STAMP"
say "installed (JDK for it: $JDK)"
echo "$INSTALL"
