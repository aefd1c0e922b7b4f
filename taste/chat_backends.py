"""Where a language model runs for the LLM judge: chat messages in, the assistant's text out.

`OpenAIChatBackend` talks to any OpenAI-compatible Chat Completions server (OpenAI, vLLM, Ollama,
llama.cpp's server) through `taste.http_session` (urllib3's bounded retries);
`TransformersChatBackend` runs a local causal LM with greedy decoding. Neither knows what is judged.
"""

from __future__ import annotations

import logging
import os
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Literal

import requests
import torch

from taste.http_session import attempts_made, describe_error, retrying_session

log = logging.getLogger(__name__)


class ChatError(Exception):
    """No usable reply; its message becomes the failure reason."""


class ChatBackend(ABC):
    """Chat messages in, the assistant's text out; raises `ChatError` when there is no reply."""

    name: str = "chat"

    @abstractmethod
    def complete(self, messages: list[dict[str, str]], json_schema: dict | None = None) -> str:
        """The reply to `messages`; `json_schema` (OpenAI's `json_schema` object) asks for structured output."""


ResponseFormat = Literal["json_schema", "json_object", "none"]
_FALLBACK: dict[str, ResponseFormat] = {"json_schema": "json_object", "json_object": "none"}


class OpenAIChatBackend(ChatBackend):
    """`POST {base_url}/chat/completions` on any OpenAI-compatible server.

    Args:
        model: Model name the server knows.
        base_url: e.g. https://api.openai.com/v1, http://localhost:8000/v1 (vLLM), http://localhost:11434/v1 (Ollama).
        api_key: The key itself; None = read the environment variable `api_key_env` (no key: no
            Authorization header, as local servers expect). Sent as a header only, never logged.
        api_key_env: Environment variable holding the key.
        timeout_s: Per-request timeout (connect and each read).
        max_retries: Retries after a 429, a 5xx, a timeout or a connection error.
        backoff_s, max_backoff_s: Backoff factor and cap (urllib3's); a 429's Retry-After is used
            instead when given (capped too).
        response_format: Start with a strict JSON schema; on a 400 that rejects it, fall back to
            json_object and then to none (the caller's parser still validates every reply). The
            fallback is remembered for later requests.
        temperature, seed, max_tokens: Sampling settings (seed None = not sent).
    """

    def __init__(
        self,
        model: str,
        base_url: str = "https://api.openai.com/v1",
        api_key: str | None = None,
        api_key_env: str = "OPENAI_API_KEY",
        timeout_s: float = 60.0,
        max_retries: int = 4,
        backoff_s: float = 1.0,
        max_backoff_s: float = 30.0,
        response_format: ResponseFormat = "json_schema",
        temperature: float = 0.0,
        seed: int | None = 0,
        max_tokens: int = 400,
    ) -> None:
        self.model = model
        self.url = base_url.rstrip("/") + "/chat/completions"
        self._api_key = api_key or os.environ.get(api_key_env) or None
        self.timeout_s = timeout_s
        self.response_format: ResponseFormat = response_format
        self.temperature = temperature
        self.seed = seed
        self.max_tokens = max_tokens
        self.name = f"openai:{model}"
        self._session = retrying_session(max_retries, backoff_s, max_backoff_s)

    def __repr__(self) -> str:
        key = "'***'" if self._api_key else "None"
        return f"OpenAIChatBackend(model={self.model!r}, url={self.url!r}, api_key={key})"

    def _mask(self, text: str) -> str:
        return text.replace(self._api_key, "***") if self._api_key else text

    def _payload(self, messages: list[dict[str, str]], json_schema: dict | None) -> dict:
        payload = {
            "model": self.model, "messages": messages, "temperature": self.temperature, "max_tokens": self.max_tokens,
        }
        if self.seed is not None:
            payload["seed"] = self.seed
        if self.response_format == "json_schema" and json_schema is not None:
            payload["response_format"] = {"type": "json_schema", "json_schema": json_schema}
        elif self.response_format in ("json_schema", "json_object") and json_schema is not None:
            payload["response_format"] = {"type": "json_object"}
        return payload

    def _rejects_format(self, response: requests.Response) -> bool:
        if response.status_code not in (400, 422) or self.response_format == "none":
            return False
        body = response.text.lower()
        return any(word in body for word in ("response_format", "json_schema", "json_object", "structured output"))

    def complete(self, messages: list[dict[str, str]], json_schema: dict | None = None) -> str:
        """The reply; a server that rejects the response format is asked again with the next simpler one."""
        headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}
        while True:
            try:
                response = self._session.post(
                    self.url, json=self._payload(messages, json_schema), headers=headers, timeout=self.timeout_s
                )
            except requests.RequestException as exc:
                failure = describe_error(exc)
                failure = f"timeout ({self.timeout_s:g} s)" if failure == "timed out" else failure
                attempts = self._session.get_adapter(self.url).max_retries.total + 1
                raise ChatError(f"{failure} after {attempts} attempt(s)") from None
            if response.status_code == 200:
                return self._content(response)
            if not self._rejects_format(response):
                break
            fallback = _FALLBACK[self.response_format]
            log.warning("%s: server rejected response_format %s; using %s", self.name, self.response_format, fallback)
            self.response_format = fallback
        error = f"http {response.status_code}"
        if response.status_code == 429 or response.status_code >= 500:
            raise ChatError(f"{error} after {attempts_made(response)} attempt(s)")
        raise ChatError(f"{error}: {self._mask(response.text[:200])}")

    def _content(self, response: requests.Response) -> str:
        try:
            message = response.json()["choices"][0]["message"]
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise ChatError(f"malformed response: {type(exc).__name__}") from None
        if message.get("refusal"):
            raise ChatError(f"refused: {str(message['refusal'])[:200]}")
        content = message.get("content")
        if not isinstance(content, str):
            raise ChatError("malformed response: message has no text content")
        return content


class TransformersChatBackend(ChatBackend):
    """A local causal LM (name or folder), greedy decoding, its chat template when it has one.

    Args:
        model_name_or_path: Hugging Face name or local folder.
        max_new_tokens: Tokens generated per judgement.
        device: Torch device.
    """

    def __init__(self, model_name_or_path: str | Path, max_new_tokens: int = 256, device: str = "cpu") -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(str(model_name_or_path))
        self.model = AutoModelForCausalLM.from_pretrained(str(model_name_or_path)).to(device).eval()
        self.max_new_tokens = max_new_tokens
        self.device = device
        self.name = f"transformers:{Path(str(model_name_or_path)).name}"

    def _prompt(self, messages: list[dict[str, str]]) -> str:
        if getattr(self.tokenizer, "chat_template", None):
            return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        turns = [f"{m['role'].capitalize()}: {m['content']}" for m in messages]
        return "\n\n".join(turns) + "\n\nAssistant:"

    @torch.no_grad()
    def complete(self, messages: list[dict[str, str]], json_schema: dict | None = None) -> str:
        """Greedy reply; `json_schema` is not enforced here (the caller's parser validates)."""
        inputs = self.tokenizer(self._prompt(messages), return_tensors="pt").to(self.device)
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.tokenizer.eos_token_id
        output = self.model.generate(**inputs, do_sample=False, max_new_tokens=self.max_new_tokens, pad_token_id=pad)
        return self.tokenizer.decode(output[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
