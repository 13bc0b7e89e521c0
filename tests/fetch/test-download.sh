#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# `m3 model download` against real servers on loopback:
#  - nginx, run as this user with a generated config (pid, logs and temp paths in a temp folder, a
#    free port), serving the tiny fixture model in the hub's layout: /BAAI/bge-m3/resolve/main/FILE
#    answers LFS files with a 302 to /cdn/FILE carrying X-Linked-Etag (SHA-256) and X-Linked-Size, and
#    small files with 200 and an ETag that is their git blob SHA-1, as huggingface.co does.
#    Path prefixes give other "endpoints": /bad (wrong checksum), /slow (rate-limited), /huge (a size
#    no disk has), /st (no pytorch_model.bin, model.safetensors instead), /xhost (LFS redirects to a
#    fault-server on another port: another host, which must not get HF_TOKEN).
#  - fault-server (tests/fetch/fault-server.c): connections cut after N bytes, HTTP 500 on cue.
#
# Usage: test-download.sh PATH/TO/m3 PATH/TO/fault-server FIXTURE_MODEL_DIR
set -uo pipefail
m3=$1
fault_server=$2
src=$3

nginx=$(command -v nginx || true)
[[ -z $nginx && -x /usr/sbin/nginx ]] && nginx=/usr/sbin/nginx
if [[ -z $nginx ]]; then
    echo "SKIP: nginx is not installed (Debian package nginx-light or nginx)"
    exit 77
fi

tmp=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
    rm -rf "$tmp"
}
trap cleanup EXIT
fails=0
checks=0
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); checks=$((checks + 1)); }
pass() { echo "ok: $*"; checks=$((checks + 1)); }
check() { # check DESCRIPTION COMMAND...
    local what=$1
    shift
    if "$@"; then pass "$what"; else fail "$what"; fi
}

# No outside state: no real cache, no mirror, no token, no proxy for loopback.
unset HF_ENDPOINT HF_TOKEN HF_HUB_CACHE XDG_DATA_HOME http_proxy https_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY all_proxy
export HF_HOME=$tmp/hf-empty
export no_proxy=127.0.0.1 NO_PROXY=127.0.0.1

files=(config.json pytorch_model.bin colbert_linear.pt sparse_linear.pt sentencepiece.bpe.model
       tokenizer.json tokenizer_config.json special_tokens_map.json)
small=" config.json tokenizer_config.json special_tokens_map.json "

# The served files: the fixture model plus a special_tokens_map.json like the hub's.
web=$tmp/web
mkdir -p "$web" "$tmp/nginx" "$tmp/empty"
for f in "${files[@]}"; do [[ -f $src/$f ]] && cp "$src/$f" "$web/$f"; done
cp "$src/model.safetensors" "$web/model.safetensors"
[[ -f $web/special_tokens_map.json ]] ||
    printf '{"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "sep_token": "</s>", "pad_token": "<pad>", "cls_token": "<s>", "mask_token": "<mask>"}\n' \
        >"$web/special_tokens_map.json"

sha256() { sha256sum "$1" | cut -d' ' -f1; }
gitsha1() { { printf 'blob %d\0' "$(stat -c %s "$1")"; cat "$1"; } | sha1sum | cut -d' ' -f1; }
size() { stat -c %s "$1"; }

# One nginx location per prefix and file, in the hub's manner.
locations() { # PREFIX CDN_PREFIX [wrong-sha|huge] FILES...
    local prefix=$1 cdn=$2 mode=$3
    shift 3
    local f sha sz
    for f in "$@"; do
        sha=$(sha256 "$web/$f")
        sz=$(size "$web/$f")
        [[ $mode == wrong-sha && $f == pytorch_model.bin ]] && sha=$(printf '0%.0s' {1..64})
        [[ $mode == huge && $f == pytorch_model.bin ]] && sz=999999999999999
        if [[ $small == *" $f "* ]]; then
            printf '    location = %s/BAAI/bge-m3/resolve/main/%s {\n' "$prefix" "$f"
            printf '      etag off; add_header ETag "\\"%s\\""; alias %s/%s;\n    }\n' "$(gitsha1 "$web/$f")" "$web" "$f"
        else
            printf '    location = %s/BAAI/bge-m3/resolve/main/%s {\n' "$prefix" "$f"
            printf '      add_header X-Linked-Etag "\\"%s\\"" always; add_header X-Linked-Size %s always;\n' "$sha" "$sz"
            printf '      return 302 %s/%s;\n    }\n' "$cdn" "$f"
        fi
    done
}

start_nginx() {
    local try port
    for try in 1 2 3 4 5 6 7 8 9 10; do
        port=$((20000 + RANDOM % 40000))
        {
            [[ $(id -u) -eq 0 ]] && echo "user $(id -un) $(id -gn);"
            cat <<EOF
worker_processes 1;
daemon off;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/error.log warn;
events { worker_connections 64; }
http {
  log_format hub '\$request_method \$uri \$http_range \$status auth=\$http_authorization';
  access_log $tmp/nginx/access.log hub;
  client_body_temp_path $tmp/nginx/client_body;
  proxy_temp_path $tmp/nginx/proxy;
  fastcgi_temp_path $tmp/nginx/fastcgi;
  uwsgi_temp_path $tmp/nginx/uwsgi;
  scgi_temp_path $tmp/nginx/scgi;
  default_type application/octet-stream;
  absolute_redirect off;
  server {
    listen 127.0.0.1:$port;
    root $tmp/empty;
    location /cdn/ { alias $web/; }
    location /slow/cdn/ { alias $web/; limit_rate 400k; }
    location /norange/cdn/ { alias $web/; max_ranges 0; }
EOF
            locations "" /cdn plain "${files[@]}"
            locations /bad /cdn wrong-sha "${files[@]}"
            locations /slow /slow/cdn plain "${files[@]}"
            locations /huge /cdn huge "${files[@]}"
            locations /xhost "$cdn_url" plain "${files[@]}"
            locations /norange /norange/cdn plain "${files[@]}"
            locations /st /cdn plain config.json model.safetensors colbert_linear.pt sparse_linear.pt \
                sentencepiece.bpe.model tokenizer.json tokenizer_config.json special_tokens_map.json
            # A mirror with only the files the encoder needs (and tokenizer.json): 404 for the rest.
            locations /min /cdn plain config.json pytorch_model.bin colbert_linear.pt sparse_linear.pt \
                sentencepiece.bpe.model tokenizer.json
            echo "  }"
            echo "}"
        } >"$tmp/nginx/nginx.conf"
        "$nginx" -p "$tmp/nginx" -e "$tmp/nginx/error.log" -c "$tmp/nginx/nginx.conf" &
        local pid=$!
        for _ in $(seq 50); do
            if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
                pids+=("$pid")
                nginx_port=$port
                return 0
            fi
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    echo "FAIL: nginx did not start:" >&2
    cat "$tmp/nginx/error.log" >&2
    exit 1
}

# fault-server root: the same files, with the hub's headers in FILE.hdr.
fault_root=$tmp/fault-root
mkdir -p "$fault_root"
for f in "${files[@]}"; do
    cp "$web/$f" "$fault_root/$f"
    if [[ $small == *" $f "* ]]; then
        printf 'ETag: "%s"\r\n' "$(gitsha1 "$web/$f")" >"$fault_root/$f.hdr"
    else
        printf 'X-Linked-Etag: "%s"\r\nX-Linked-Size: %s\r\n' "$(sha256 "$web/$f")" "$(size "$web/$f")" >"$fault_root/$f.hdr"
    fi
done
fault_n=0
start_fault() { # start_fault [fault-server options...]; sets fault_url and fault_log
    fault_n=$((fault_n + 1))
    fault_log=$tmp/fault-$fault_n.log
    "$fault_server" --root "$fault_root" --port-file "$tmp/fault-$fault_n.port" --log "$fault_log" "$@" &
    fault_pid=$!
    pids+=("$fault_pid")
    for _ in $(seq 50); do [[ -f $tmp/fault-$fault_n.port ]] && break; sleep 0.1; done
    fault_url=http://127.0.0.1:$(cat "$tmp/fault-$fault_n.port")
}
stop_fault() { kill "$fault_pid" 2>/dev/null; wait "$fault_pid" 2>/dev/null; }

# A "CDN" on another port (another host to libcurl) for the /xhost endpoint's redirects.
start_fault
cdn_url=$fault_url
cdn_log=$fault_log
start_nginx
url=http://127.0.0.1:$nginx_port
log=$tmp/nginx/access.log
lines() { wc -l <"$log"; }
# Lines of the access log after line $1.
log_since() { tail -n +"$(($1 + 1))" "$log"; }

identical() { # identical DIR: every file is byte-identical to the served one, nothing else left
    local d=$1 f
    for f in "${files[@]}"; do cmp -s "$web/$f" "$d/$f" || { echo "  $f differs or is missing" >&2; return 1; }; done
    if compgen -G "$d/*.part" >/dev/null; then echo "  .part files left" >&2; return 1; fi
}
one_line() { [[ $(wc -l <"$1") -eq 1 ]] || { echo "  stderr:" >&2; cat "$1" >&2; return 1; }; }
dl() { "$m3" model download --retry-delay 10 "$@"; }

# 1. Clean download through HF_ENDPOINT, with HF_TOKEN sent as a bearer token.
d=$tmp/clean
n0=$(lines)
HF_ENDPOINT=$url HF_TOKEN=secret-token dl --dir "$d" >"$tmp/out" 2>"$tmp/err"
rc=$?
check "clean download exits 0" test $rc -eq 0
check "clean download prints the model folder" test "$(cat "$tmp/out")" = "$d"
check "clean download: files identical to the source" identical "$d"
check "clean download: LFS files came through the hub's 302 to the CDN" \
    grep -q '^HEAD /BAAI/bge-m3/resolve/main/pytorch_model.bin - 302' "$log"
check "clean download: HF_TOKEN sent as Authorization: Bearer" \
    grep -q '^GET /BAAI/bge-m3/resolve/main/config.json - 200 auth=Bearer secret-token' "$log"
check "clean download: LFS files checked against X-Linked-Etag (SHA-256)" \
    grep -q '^m3 model download: pytorch_model.bin: .*, SHA-256 verified, installed$' "$tmp/err"
check "clean download: small files checked against the ETag (git blob SHA-1)" \
    grep -q '^m3 model download: config.json: .*, git SHA-1 verified, installed$' "$tmp/err"
check "clean download: no Range request on a fresh download" bash -c "! tail -n +$((n0 + 1)) '$log' | grep -q bytes="
sums_ok() { # sums_ok DIR: SHA256SUMS lists every file with the served file's SHA-256, and nothing else
    local d=$1 f want
    [[ -f $d/SHA256SUMS && ! -e $d/SHA256SUMS.tmp ]] || { echo "  no SHA256SUMS (or a .tmp left)" >&2; return 1; }
    want=$(for f in "${files[@]}"; do printf '%s  %s\n' "$(sha256 "$web/$f")" "$f"; done | sort)
    [[ $(sort "$d/SHA256SUMS") == "$want" ]] || { echo "  SHA256SUMS:" >&2; cat "$d/SHA256SUMS" >&2; return 1; }
    (cd "$d" && sha256sum --quiet -c SHA256SUMS) >&2
}
check "clean download: SHA256SUMS lists every file (the hub's SHA-256, computed for the small files)" sums_ok "$d"
"$m3" model verify "$d" >"$tmp/out" 2>"$tmp/err"
check "clean download: m3 model verify exits 0" test $? -eq 0
check "clean download: m3 model verify checked the 8 files of SHA256SUMS" \
    grep -q "^$d: OK: model folder, 8 files match SHA256SUMS" "$tmp/out"
n1=$(lines)
dl --endpoint "$url" --dir "$d" --quiet >"$tmp/out" 2>"$tmp/err"
check "a complete folder is reused without any request" test $? -eq 0 -a "$(lines)" -eq "$n1"
check "a complete folder: SHA256SUMS unchanged" sums_ok "$d"
# A flipped byte in a weight file: verify fails and names the file.
cp -r "$d" "$tmp/flipped"
off=$(( $(size "$tmp/flipped/pytorch_model.bin") / 2 ))
b=$(od -An -tu1 -j "$off" -N1 "$tmp/flipped/pytorch_model.bin" | tr -d ' ')
printf "\\$(printf '%03o' $(( b ^ 1 )))" | dd of="$tmp/flipped/pytorch_model.bin" bs=1 seek="$off" conv=notrunc status=none
"$m3" model verify "$tmp/flipped" >"$tmp/out" 2>"$tmp/err"
rc=$?
check "a flipped byte in pytorch_model.bin: verify exits 1" test $rc -eq 1
check "a flipped byte in pytorch_model.bin: verify names the file" \
    grep -q "$tmp/flipped/pytorch_model.bin: checksum mismatch against SHA256SUMS" "$tmp/err"
check "a flipped byte: the error is one line" one_line "$tmp/err"

# 1b. Redirect to another host: HF_TOKEN goes to the hub, never to the CDN.
d=$tmp/xhost
HF_TOKEN=secret-token dl --endpoint "$url/xhost" --dir "$d" --quiet >"$tmp/out" 2>"$tmp/err"
check "redirect to another host: exits 0" test $? -eq 0
check "redirect to another host: identical to the source" identical "$d"
check "redirect to another host: the hub got the token" \
    grep -q '^HEAD /xhost/BAAI/bge-m3/resolve/main/pytorch_model.bin - 302 auth=Bearer secret-token' "$log"
check "redirect to another host: the CDN got the GETs, without the token" \
    bash -c "grep -q '^GET .*pytorch_model.bin - 200$' '$cdn_log' && ! grep -q ' auth$' '$cdn_log'"

# 2. Connection cut mid-file, no retries: fails, keeps the .part; the second run resumes with Range.
d=$tmp/cut
start_fault --cut-after 3000000
dl --endpoint "$fault_url" --dir "$d" --retries 0 --quiet >"$tmp/out" 2>"$tmp/err"
rc=$?
stop_fault
check "cut connection without retries fails" test $rc -ne 0
check "cut connection: one-line error naming the URL" \
    bash -c "grep -q 'pytorch_model.bin' '$tmp/err' && [[ \$(wc -l <'$tmp/err') -eq 1 ]]"
check "cut connection: the .part is kept, nothing installed" \
    bash -c "[[ -s '$d/pytorch_model.bin.part' && ! -e '$d/pytorch_model.bin' ]]"
part=$(stat -c %s "$d/pytorch_model.bin.part" 2>/dev/null || echo 0)
n0=$(lines)
dl --endpoint "$url" --dir "$d" --quiet >"$tmp/out" 2>"$tmp/err"
check "resume after a cut exits 0" test $? -eq 0
check "resume sends a Range request from the .part's size ($part)" \
    bash -c "tail -n +$((n0 + 1)) '$log' | grep -q '^GET /cdn/pytorch_model.bin bytes=$part- 206'"
check "resumed download identical to the source" identical "$d"
check "resumed download: SHA256SUMS lists the files of both runs" sums_ok "$d"

# 3. Cuts with retries: one run gets there, resuming each time.
d=$tmp/cut-retry
start_fault --cut-after 3000000
dl --endpoint "$fault_url" --dir "$d" --quiet >"$tmp/out" 2>"$tmp/err"
rc=$?
stop_fault
check "repeated cuts: retried and resumed within one run" test $rc -eq 0
check "repeated cuts: resumed with Range requests" grep -q '^GET .*pytorch_model.bin bytes=6000000- 206' "$fault_log"
check "repeated cuts: identical to the source" identical "$d"

# 3b. A server without Range support: the .part is started over, the result is still right.
d=$tmp/norange
mkdir -p "$d"
head -c 1000000 "$web/pytorch_model.bin" >"$d/pytorch_model.bin.part"
n0=$(lines)
dl --endpoint "$url/norange" --dir "$d" --quiet >"$tmp/out" 2>"$tmp/err"
check "no Range support: exits 0" test $? -eq 0
check "no Range support: asked for a range, got 200, fetched the whole file again" \
    bash -c "tail -n +$((n0 + 1)) '$log' | grep -q '^GET /norange/cdn/pytorch_model.bin bytes=1000000- 200' &&
             tail -n +$((n0 + 1)) '$log' | grep -q '^GET /norange/cdn/pytorch_model.bin - 200'"
check "no Range support: identical to the source" identical "$d"

# 4. HTTP 500 twice, then success: retried with back-off.
d=$tmp/retry
start_fault --fail-first 2
dl --endpoint "$fault_url" --dir "$d" >"$tmp/out" 2>"$tmp/err"
rc=$?
stop_fault
check "HTTP 500 then success: exits 0" test $rc -eq 0
check "HTTP 500 then success: two 500s were answered" test "$(grep -c ' 500$' "$fault_log")" -eq 2
check "HTTP 500 then success: retries reported" grep -q 'HTTP 500; retry' "$tmp/err"
check "HTTP 500 then success: identical to the source" identical "$d"

# 5. HTTP 500 for ever: gives up after --retries, one clear line.
d=$tmp/retry-fail
start_fault --fail-first 1000
dl --endpoint "$fault_url" --dir "$d" --retries 2 --quiet >"$tmp/out" 2>"$tmp/err"
rc=$?
stop_fault
check "HTTP 500 for ever: fails after 3 tries" test $rc -eq 1 -a "$(grep -c ' 500$' "$fault_log")" -eq 3
check "HTTP 500 for ever: one line saying so" bash -c "grep -q 'HTTP 500 after 3 tries' '$tmp/err' && [[ \$(wc -l <'$tmp/err') -eq 1 ]]"

# 6. 404 (a revision that does not exist): clear error, non-zero exit, nothing installed.
d=$tmp/missing
dl --endpoint "$url" --revision no-such-revision --dir "$d" --quiet >"$tmp/out" 2>"$tmp/err"
rc=$?
check "404: exit status 1" test $rc -eq 1
check "404: one line naming the file, the URL and what to check" \
    grep -q "config.json not found at $url/BAAI/bge-m3/resolve/no-such-revision/config.json (check --revision / the endpoint)" "$tmp/err"
check "404: the error is one line" one_line "$tmp/err"
check "404: no 401/404 retry" test "$(grep -c 'no-such-revision' "$log")" -eq 1

# 7. Wrong checksum: rejected, not installed, .part removed.
d=$tmp/bad
dl --endpoint "$url/bad" --dir "$d" --quiet >"$tmp/out" 2>"$tmp/err"
rc=$?
check "wrong checksum: exit status 1" test $rc -eq 1
check "wrong checksum: the error names the file and the mismatch" grep -q 'pytorch_model.bin: SHA-256 mismatch' "$tmp/err"
check "wrong checksum: one line" one_line "$tmp/err"
check "wrong checksum: not installed, no .part left" \
    bash -c "[[ ! -e '$d/pytorch_model.bin' && ! -e '$d/pytorch_model.bin.part' ]]"

# 8. Not enough free space (statvfs against the published sizes): refused before any GET.
d=$tmp/huge
n0=$(lines)
dl --endpoint "$url/huge" --dir "$d" --quiet >"$tmp/out" 2>"$tmp/err"
rc=$?
check "no free space: exit status 1" test $rc -eq 1
check "no free space: names the folder and the bytes needed" \
    grep -q "not enough free space in $d: .* ([0-9]* bytes) needed, .* available" "$tmp/err"
check "no free space: no GET was made" bash -c "! tail -n +$((n0 + 1)) '$log' | grep -q '^GET'"

# 9. Disk full while writing (RLIMIT_FSIZE: write fails with EFBIG, SIGXFSZ ignored).
d=$tmp/full
(trap '' XFSZ; ulimit -f 4096; exec "$m3" model download --endpoint "$url" --dir "$d" --quiet) >"$tmp/out" 2>"$tmp/err"
rc=$?
check "disk full: exit status 1" test $rc -eq 1
check "disk full: names the .part, the folder and the bytes needed" \
    grep -q "cannot write $d/pytorch_model.bin.part: File too large; .* more needed in $d" "$tmp/err"
check "disk full: one line" one_line "$tmp/err"
check "disk full: nothing half-installed" bash -c "[[ ! -e '$d/pytorch_model.bin' ]]"
dl --endpoint "$url" --dir "$d" --quiet >"$tmp/out" 2>"$tmp/err"
check "disk full: a run with space resumes and completes" identical "$d"
check "disk full: after the resumed run, SHA256SUMS lists every file" sums_ok "$d"

# 10. An existing Hugging Face cache snapshot is reused without any request.
hub=$tmp/hf/hub/models--BAAI--bge-m3
commit=0123456789abcdef0123456789abcdef01234567
mkdir -p "$hub/refs" "$hub/blobs" "$hub/snapshots/$commit"
printf '%s' "$commit" >"$hub/refs/main"
for f in "${files[@]}"; do
    # As the hub cache names blobs: LFS files by their SHA-256, the small ones by their git blob SHA-1.
    if [[ $small == *" $f "* ]]; then h=$(gitsha1 "$web/$f"); else h=$(sha256 "$web/$f"); fi
    cp "$web/$f" "$hub/blobs/$h"
    ln -s "../../blobs/$h" "$hub/snapshots/$commit/$f"
done
d=$tmp/from-cache
n0=$(lines)
cache_before=$(find "$tmp/hf" -printf '%p %s %T@\n' | sort)
HF_HOME=$tmp/hf dl --endpoint "$url" --dir "$d" >"$tmp/out" 2>"$tmp/err"
rc=$?
check "cache snapshot: exit 0" test $rc -eq 0
check "cache snapshot: prints the snapshot folder" test "$(cat "$tmp/out")" = "$hub/snapshots/$commit"
check "cache snapshot: says it uses the cache" grep -q "using the Hugging Face cache snapshot $hub/snapshots/$commit" "$tmp/err"
check "cache snapshot: no request at all" test "$(lines)" -eq "$n0"
check "cache snapshot: nothing written to --dir" test ! -e "$d"
check "cache snapshot: nothing written into the cache (no SHA256SUMS there)" \
    test "$(find "$tmp/hf" -printf '%p %s %T@\n' | sort)" = "$cache_before"
"$m3" model verify "$hub/snapshots/$commit" >"$tmp/out" 2>"$tmp/err"
check "cache snapshot: m3 model verify checks the 8 files against their blob names" \
    grep -q "OK: Hugging Face cache snapshot, 8 files match their blob names" "$tmp/out"
blob=$hub/blobs/$(gitsha1 "$web/config.json")
cp "$blob" "$tmp/blob.bak"
printf ' ' >>"$blob"
"$m3" model verify "$hub/snapshots/$commit" >"$tmp/out" 2>"$tmp/err"
rc=$?
check "cache snapshot with a damaged blob: verify exits 1 naming the file" \
    bash -c "[[ $rc -eq 1 ]] && grep -q '$hub/snapshots/$commit/config.json: checksum mismatch against its Hugging Face cache blob name' '$tmp/err'"
cp "$tmp/blob.bak" "$blob"
rm "$hub/blobs/$(sha256 "$web/pytorch_model.bin")"  # an incomplete snapshot: a dangling link
HF_HOME=$tmp/hf dl --endpoint "$url" --dir "$d" --quiet >"$tmp/out" 2>"$tmp/err"
check "incomplete cache snapshot: downloaded instead" bash -c "[[ \$(cat '$tmp/out') == '$d' ]] && [[ \$(wc -l <'$log') -gt $n0 ]]"
check "incomplete cache snapshot: download identical" identical "$d"

# 11. No pytorch_model.bin in the revision: model.safetensors instead.
d=$tmp/st
dl --endpoint "$url/st" --dir "$d" --quiet >"$tmp/out" 2>"$tmp/err"
check "model.safetensors fallback: exit 0" test $? -eq 0
check "model.safetensors fallback: installed and identical" cmp -s "$web/model.safetensors" "$d/model.safetensors"

# 12. SIGINT mid-download: resumable state, message, non-zero exit; the next run resumes.
d=$tmp/sigint
"$m3" model download --endpoint "$url/slow" --dir "$d" >"$tmp/out" 2>"$tmp/err" &
m3pid=$!
for _ in $(seq 200); do
    s=$(stat -c %s "$d/pytorch_model.bin.part" 2>/dev/null || echo 0)
    [[ $s -gt 500000 ]] && break
    sleep 0.1
done
kill -INT "$m3pid"
wait "$m3pid"
rc=$?
check "SIGINT: exit status 130" test $rc -eq 130
check "SIGINT: says that running again resumes" grep -q 'run the same command again to resume' "$tmp/err"
check "SIGINT: the .part is kept, nothing installed" \
    bash -c "[[ -s '$d/pytorch_model.bin.part' && ! -e '$d/pytorch_model.bin' ]]"
part=$(stat -c %s "$d/pytorch_model.bin.part" 2>/dev/null || echo 0)
n0=$(lines)
dl --endpoint "$url" --dir "$d" --quiet >"$tmp/out" 2>"$tmp/err"
check "SIGINT: the next run exits 0" test $? -eq 0
check "SIGINT: the next run resumes with Range from $part" \
    bash -c "tail -n +$((n0 + 1)) '$log' | grep -q '^GET /cdn/pytorch_model.bin bytes=$part- 206'"
check "SIGINT: resumed download identical" identical "$d"

# 13. A mirror that serves only the files the encoder needs: the 404s for tokenizer_config.json and
#     special_tokens_map.json are no error, and the folder counts as complete without them.
d=$tmp/min
dl --endpoint "$url/min" --dir "$d" --quiet >"$tmp/out" 2>"$tmp/err"
check "minimal mirror: exits 0" test $? -eq 0
check "minimal mirror: the encoder's files installed, identical" bash -c "
    for f in config.json pytorch_model.bin colbert_linear.pt sparse_linear.pt sentencepiece.bpe.model tokenizer.json; do
        cmp -s '$web/'\$f '$d/'\$f || exit 1; done"
check "minimal mirror: no optional file, no .part left" \
    bash -c "[[ ! -e '$d/tokenizer_config.json' && ! -e '$d/special_tokens_map.json' ]] && ! compgen -G '$d/*.part'"
check "minimal mirror: the 404 of tokenizer_config.json was asked for" \
    grep -q '^HEAD /min/BAAI/bge-m3/resolve/main/tokenizer_config.json - 404' "$log"
n0=$(lines)
dl --endpoint "$url/min" --dir "$d" --quiet >"$tmp/out" 2>"$tmp/err"
rc=$?
check "minimal mirror: a second run exits 0" test $rc -eq 0
check "minimal mirror: a second run makes no request" test "$(log_since "$n0" | wc -l)" -eq 0
"$m3" model download --endpoint "$url/min-missing" --dir "$tmp/min-missing" --quiet >/dev/null 2>"$tmp/err"
check "a required file's 404 is still an error naming it" grep -q 'config.json.*not found' "$tmp/err"

# 14. Usage errors.
"$m3" model download --bogus >/dev/null 2>&1
check "unknown option: exit status 2" test $? -eq 2
"$m3" model download --endpoint ftp://example.org --dir "$tmp/x" --quiet >/dev/null 2>"$tmp/err"
check "non-http endpoint: refused with a message" grep -q 'expected an http:// or https:// URL' "$tmp/err"

echo "$checks checks, $fails failed"
[[ $checks -gt 0 && $fails -eq 0 ]]
