#!/usr/bin/env bash
# Issue #28 on the GPU machine (docs/gpu.md): unpack the carried vLLM 0.26.0 and wheels, convert the bundled
# SmolLM2-135M GGUF to bf16 safetensors, serve it with vLLM (recchat's structured outputs) and then with
# `transformers serve --continuous-batching`, and replay recchat's recorded requests (bench/data/requests.jsonl)
# against each with bench/gpu_serving.py. Every step has a time guard; each result file is written as it grows, and
# $OUT gets the JSON results plus logs.tgz even when a step fails or hangs.
#
#   GPU_PAYLOAD_SHA=<sha256 of the whole payload> bash bench/gpu_run.sh
# in the repository root, once the payload parts (payload.part.00 ...) are in $GPU_STASH (/tmp/vstash) or .vx/cN/.
#
# Re-running it on the same (warm) machine skips what is done already: the unpacked site and the converted model.
set -u
OUT=${OUT:-/tmp/gpu-out}
BUDGET=${GPU_RUN_BUDGET:-450}        # seconds for the whole script; a step that cannot fit is skipped
STASH=${GPU_STASH:-/tmp/vstash}
SKIP=${GPU_RUN_SKIP:-}               # e.g. "transformers" to leave that engine out of a rerun
SITE=/tmp/site PAY=/tmp/pay MODEL=/tmp/smollm2-135m LOGS=/tmp/gpu-logs RECCHAT=/tmp/recchat-snapshot
NAME=smollm2-135m
mkdir -p "$OUT" "$LOGS" "$SITE" "$PAY"
T0=$(date +%s)
left() { echo $((BUDGET - ($(date +%s) - T0))); }
say() { echo "[$(($(date +%s) - T0)) s] $*" | tee -a "$LOGS/steps.log"; }
SERVER=
stop_server() {
  [ -n "$SERVER" ] || return 0
  kill -TERM -- "-$SERVER" 2>/dev/null
  for _ in $(seq 20); do kill -0 "$SERVER" 2>/dev/null || break; sleep 0.5; done
  kill -KILL -- "-$SERVER" 2>/dev/null
  SERVER=
}
finish() {
  stop_server
  nvidia-smi >>"$LOGS/nvidia-smi.txt" 2>&1
  cp "$LOGS/steps.log" "$OUT/" 2>/dev/null
  tar -czf "$OUT/logs.tgz" -C "$LOGS" . 2>/dev/null
}
trap finish EXIT
healthy() { python3 -c "import sys,urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)" "$1" 2>/dev/null; }
wait_healthy() { # url, seconds: 0 when healthy, 1 when the server exited, 2 when it took too long
  local end=$(($(date +%s) + $2))
  while [ "$(date +%s)" -lt "$end" ]; do
    healthy "$1" && return 0
    kill -0 "$SERVER" 2>/dev/null || return 1
    sleep 1
  done
  return 2
}
bench() { # seconds, then the arguments of bench/gpu_serving.py
  local limit=$1; shift
  [ "$(left)" -gt 20 ] || { say "skipped (no time left): $*"; return 1; }
  [ "$limit" -lt "$(left)" ] || limit=$(left)
  say "bench ($limit s): $*"
  timeout -k 5 "$limit" python3 bench/gpu_serving.py "$@" 2>&1 | tee -a "$LOGS/bench.log" | grep -v "^{" | tail -n 12
}

export PYTHONPATH=$SITE HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_HUB_DISABLE_UPDATE_CHECK=1 VLLM_NO_USAGE_STATS=1 \
  DO_NOT_TRACK=1 PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false GPU_BENCH_RECCHAT=$RECCHAT
# FlashInfer is not carried: vLLM 0.26's sampler imports it at start unless told not to (seen on the first run:
# "No module named 'flashinfer'" from flashinfer_sampler_supported). DeepGEMM is for FP8 models only.
export VLLM_USE_FLASHINFER_SAMPLER=0 VLLM_USE_DEEP_GEMM=0
say "start: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1)"
{ python3 -V; python3 -m pip list 2>/dev/null | grep -iE "^(torch|transformers|tokenizers|triton|numpy) "; nproc; free -g;
  command -v xz gcc curl; } >"$LOGS/machine.txt" 2>&1

# 1. Unpack: the parts make one tar (vLLM as tar.xz, the wheels, the GGUF, recchat's LLM modules at the recorded commit)
if [ ! -f "$SITE/.ready" ]; then
  PARTS=()  # each part where a carrying call left it: moved to $STASH, or still in the carried folder .vx/cN
  for n in 00 01 02 03 04 05 06 07 08 09; do
    for f in "$STASH/payload.part.$n" .vx/c*/payload.part.$n; do [ -f "$f" ] && { PARTS+=("$f"); break; }; done
  done
  say "unpack ${#PARTS[@]} parts, $(cat "${PARTS[@]}" | wc -c) bytes"
  if [ -n "${GPU_PAYLOAD_SHA:-}" ]; then
    SUM=$(cat "${PARTS[@]}" | sha256sum | cut -c1-64)
    [ "$SUM" = "$GPU_PAYLOAD_SHA" ] || { say "payload sha256 $SUM, expected $GPU_PAYLOAD_SHA"; exit 1; }
  fi
  cat "${PARTS[@]}" | tar -x -C "$PAY" || { say "payload does not untar"; exit 1; }
  if command -v xz >/dev/null; then
    (xz -T0 -dc "$PAY/vllm-slim.tar.xz" | tar -x -C "$SITE") &
  else
    python3 -c "import tarfile,sys; tarfile.open(sys.argv[1], 'r:xz').extractall(sys.argv[2])" "$PAY/vllm-slim.tar.xz" "$SITE" &
  fi
  XZ=$!
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$SITE" "$PAY"/wheels/*.whl \
    >"$LOGS/pip.log" 2>&1 || { say "pip failed: $(tail -n 3 "$LOGS/pip.log")"; exit 1; }
  mkdir -p "$RECCHAT" && tar -x -C "$RECCHAT" -f "$PAY/recchat-snapshot.tar"
  say "wheels installed; converting the model while vLLM unpacks"
  timeout 240 python3 bench/gpu_serving.py convert "$PAY/SmolLM2-135M-Instruct.Q4_1.gguf" "$MODEL" >"$LOGS/convert.log" 2>&1 &
  CONVERT=$!
  wait $XZ || { say "vLLM does not unpack"; exit 1; }
  wait $CONVERT || { say "conversion failed: $(tail -n 3 "$LOGS/convert.log")"; exit 1; }
  say "$(tail -n 1 "$LOGS/convert.log")"
  touch "$SITE/.ready"
fi
ls "$MODEL" >>"$LOGS/machine.txt"

# 2. vLLM: full CUDA graphs for decode without torch.compile (starts fast); else eager
start_vllm() { # seconds, then extra arguments
  local limit=$1; shift
  say "vLLM starts: $*"
  setsid python3 -m vllm.entrypoints.openai.api_server --model "$MODEL" --served-model-name "$NAME" \
    --host 127.0.0.1 --port 8000 --max-model-len 4096 --gpu-memory-utilization 0.5 --max-num-seqs 128 \
    --uvicorn-log-level warning "${WHITESPACE[@]}" "$@" >>"$LOGS/vllm.log" 2>&1 &
  SERVER=$!
  wait_healthy http://127.0.0.1:8000/health "$limit"
  local status=$?
  [ $status -eq 0 ] && { say "vLLM healthy"; return 0; }
  say "vLLM not healthy (status $status): $(grep -E "Error|error" "$LOGS/vllm.log" | tail -n 3)"
  stop_server
  return 1
}
FULL='{"cudagraph_mode":"FULL_DECODE_ONLY","max_cudagraph_capture_size":64}'
# recchat's `serve-llm --engine vllm` serves compact JSON (recchat/llm/server.py VLLM_COMPACT_JSON); the same flag here.
COMPACT=(--structured-outputs-config '{"backend": "xgrammar", "disable_any_whitespace": true}')
run_vllm() { # a name for the result files, then the whitespace flags (none: the grammar allows any whitespace)
  local tag=$1; shift
  WHITESPACE=("$@")
  VLLM_ARGS="--optimization-level 0 --compilation-config $FULL ${WHITESPACE[*]}"
  start_vllm 200 --optimization-level 0 --compilation-config "$FULL" ||
    { [ "$(left)" -gt 250 ] && VLLM_ARGS="--enforce-eager ${WHITESPACE[*]}" && start_vllm 150 --enforce-eager; } ||
    { [ "$(left)" -gt 250 ] && VLLM_ARGS="--enforce-eager --attention-backend TRITON_ATTN ${WHITESPACE[*]}" &&
      start_vllm 150 --enforce-eager --attention-backend TRITON_ATTN; }
  [ -n "$SERVER" ] || return 1
  grep -iE "backend|cuda ?graph|took|memory|KV cache|xgrammar|guidance" "$LOGS/vllm.log" | tail -n 15 >>"$LOGS/steps.log"
  URL=http://127.0.0.1:8000/v1
  bench 150 replay --base-url $URL --model $NAME --engine vllm --kind recommend --users 1 8 32 64 \
    --requests "${GPU_RECOMMEND_REQUESTS[@]}" --level-timeout 30 --level-grace 15 --tokenizer "$MODEL" \
    --server-note "vllm 0.26.0 (slim wheel), $VLLM_ARGS, max-model-len 4096, max-num-seqs 128" \
    --out "$OUT/gpu-vllm-recommend$tag.json"
  if [ -z "$tag" ]; then
    bench 60 stream-check --base-url $URL --model $NAME --engine vllm --limit 4 --out "$OUT/gpu-vllm-stream-check.json"
    bench 90 replay --base-url $URL --model $NAME --engine vllm --kind read-state --users 1 8 32 64 \
      --requests 24 48 48 48 --level-timeout 20 --level-grace 10 --tokenizer "$MODEL" \
      --server-note "vllm 0.26.0 (slim wheel), $VLLM_ARGS" --out "$OUT/gpu-vllm-read-state.json" \
      --note "model-read state (prompts/read-state); the largest model carried is SmolLM2-135M"
  fi
  stop_server
}
# requests per level (1, 8, 32, 64 users); more requests make a longer, steadier level
read -r -a GPU_RECOMMEND_REQUESTS <<<"${GPU_RECOMMEND_REQUESTS:-32 64 64 64}"
if [[ $SKIP != *vllm* ]]; then
  run_vllm "" "${COMPACT[@]}"
  # The same replay with the grammar's default whitespace, for the before/after (skip with GPU_RUN_SKIP=any-whitespace)
  [[ $SKIP == *any-whitespace* ]] || [ "$(left)" -lt 200 ] || run_vllm -any-whitespace
fi

# 3. transformers serve on the same GPU: recchat's `generic` request (it ignores response_format; validity is counted)
if [[ $SKIP != *transformers* ]] && [ "$(left)" -gt 60 ]; then
  say "transformers serve starts"
  setsid python3 -m transformers.cli.transformers serve "$MODEL" --host 127.0.0.1 --port 8001 \
    --continuous-batching --log-level info >>"$LOGS/transformers.log" 2>&1 &
  SERVER=$!
  if wait_healthy http://127.0.0.1:8001/health 120; then
    say "transformers serve healthy"
    bench 170 replay --base-url http://127.0.0.1:8001/v1 --model "$MODEL" --engine transformers --kind recommend \
      --users 1 8 32 64 --requests 8 16 32 64 --level-timeout 25 --level-grace 10 --warmup 1 --tokenizer "$MODEL" \
      --server-note "transformers 5.17 serve --continuous-batching (device image)" \
      --note "fewer requests per level than vLLM (8, 16, 32, 64) to fit the device time" \
      --out "$OUT/gpu-transformers-recommend.json"
  else
    say "transformers serve not healthy: $(tail -n 3 "$LOGS/transformers.log")"
  fi
  stop_server
fi
say "done"
