"""Captions from any vision-language model behind an OpenAI-compatible chat-completions API.

Ollama, vLLM, llama.cpp's server, LM Studio and hosted APIs all speak the same protocol: one POST
to ``{endpoint}/chat/completions`` with the image inline as a base64 data URL. The model runs
elsewhere, so the work here is network policy: a bounded number of requests in flight, retries
with backoff on 429/5xx that honour ``Retry-After``, a per-request timeout, and failing at the
first image (sent alone) when the key, model or endpoint is wrong, rather than after a folder.

Plain httpx, not the ``openai`` SDK: the protocol we use is one JSON POST, and the SDK's own retry
loop (its backoff curve, its Retry-After cap) would have to be switched off so that exactly one
policy, :class:`RetryPolicy`, decides, and tests can drive it with a fake clock.
"""

from __future__ import annotations

import os
import queue
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from photoseek.errors import BadInput, Unavailable
from photoseek.models.runtime import Runtime

if TYPE_CHECKING:
    from PIL import Image  # loaded where an image is made: the option defaults here are read at start-up

PREFIX = "openai:"
"""`--caption-model openai:MODEL` selects this captioner."""
ENDPOINT_ENV = "OPENAI_BASE_URL"
KEY_ENV = "OPENAI_API_KEY"
HOSTED_ENDPOINT = "https://api.openai.com/v1"
"""The endpoint when neither `--caption-endpoint` nor $OPENAI_BASE_URL says otherwise (as the OpenAI SDK)."""
MAX_SIDE = 1024
"""Longest side sent: what VLMs resize to anyway, and a few hundred KB per request at most."""
DEFAULT_WORKERS = 4
DEFAULT_TIMEOUT_S = 120.0
"""Per request: a local model on a CPU can take a minute for a detailed caption."""


@dataclass(frozen=True)
class Preset:
    prompt: str
    max_tokens: int


PRESETS = {
    "brief": Preset("Describe this photo in one short sentence.", 60),
    "detailed": Preset(
        "Describe this photo in two or three sentences for a search index: the main subjects, how many "
        "there are, what they are doing, the setting, notable colours and any legible text. "
        "Do not speculate and do not mention the photo itself.",
        200,
    ),
    "keywords": Preset(
        "List 10 to 20 comma-separated keywords for this photo: objects, people, animals, place, activity, "
        "season, colours, visible text. Keywords only, no sentence.",
        120,
    ),
}
DEFAULT_PRESET = "detailed"
CUSTOM_MAX_TOKENS = 300


class CaptionApiError(Unavailable):
    """The caption endpoint refused or failed; the message says what to change."""


@dataclass(frozen=True)
class RetryPolicy:
    """When to try a request again: 408, 429, 5xx, timeouts and dropped connections, with exponential backoff.

    A ``Retry-After`` header (seconds or an HTTP date) replaces the computed delay; one longer than
    `max_retry_after_s` (a daily quota, say) is not waited out but reported.
    """

    attempts: int = 5
    base_delay_s: float = 1.0
    max_delay_s: float = 30.0
    max_retry_after_s: float = 120.0
    jitter: float = 0.25
    """Up to this fraction is added to computed delays, so parallel workers do not retry in lockstep."""

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait before attempt `attempt + 1` (attempt counts from 0)."""
        if retry_after is not None:
            return retry_after
        backoff = min(self.max_delay_s, self.base_delay_s * 2**attempt)
        return backoff * (1 + self.jitter * random.random())


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds from a Retry-After header: delta-seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    from email.utils import parsedate_to_datetime  # here: only a server that says "wait" needs it (3 ms)

    try:
        when = parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when - (time.time() if now is None else now))


def resolve_endpoint(endpoint: str | None) -> str:
    """The chat-completions URL for a base URL (``http://host:11434/v1``) or a full one."""
    base = (endpoint or os.environ.get(ENDPOINT_ENV) or HOSTED_ENDPOINT).strip().rstrip("/")
    if not base.startswith(("http://", "https://")):
        raise BadInput(
            f"--caption-endpoint {base!r} is not an http(s) URL: give the API's base URL, "
            "e.g. http://localhost:11434/v1 for Ollama or http://localhost:8000/v1 for vLLM."
        )
    return base if base.endswith("/chat/completions") else f"{base}/chat/completions"


class ApiCaptioner:
    """Captions images with a model served over an OpenAI-compatible API, `workers` requests at a time.

    `prompt` is a preset name (brief, detailed, keywords) or the prompt text itself; it is part of
    `model_id`, so a different prompt recomputes. The endpoint is not: the same model name served
    elsewhere is taken to give the same captions. The model runs elsewhere, so `runtime` places
    nothing: it tracks the HTTP client (its open connections) like any model's state, so an idle
    server closes it and the next caption opens it again.
    """

    source = "caption"
    in_workers = False
    """Called on batches from the main thread; it runs its own bounded pool of requests."""

    def __init__(
        self,
        model: str,
        prompt: str | None = None,
        *,
        endpoint: str | None = None,
        api_key: str | None = None,
        workers: int = DEFAULT_WORKERS,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], object] | None = None,
        runtime: Runtime | None = None,
    ) -> None:
        if not model:
            raise BadInput("Name the model after 'openai:', e.g. --caption-model openai:llava.")
        if workers < 1:
            raise BadInput("--caption-workers must be at least 1.")
        self.model = model
        self.url = resolve_endpoint(endpoint)
        self.api_key = api_key if api_key is not None else os.environ.get(KEY_ENV) or None
        self.workers = workers
        self.batch_size = 4 * workers
        """Images per call from the enrich pass: workers idle at batch ends, so a few rounds per batch."""
        self.timeout_s = timeout_s
        self.retry = retry or RetryPolicy()
        self._stop = threading.Event()
        """Set when a batch is abandoned (Ctrl+C, a fatal error): the other workers stop retrying."""
        self._sleep = sleep or self._stop.wait
        preset = PRESETS.get(prompt or DEFAULT_PRESET)
        self.prompt = preset.prompt if preset else str(prompt)
        self.max_tokens = preset.max_tokens if preset else CUSTOM_MAX_TOKENS
        self.model_id = f"{PREFIX}{model}" if prompt is None else f"{PREFIX}{model}|prompt={prompt}"
        self._verified = False
        self._client = (runtime or Runtime()).lazy(f"caption {self.model_id}", self._open_client, _close_client)
        if self.api_key is None and self.url.startswith(HOSTED_ENDPOINT):
            raise BadInput(
                f"{HOSTED_ENDPOINT} needs an API key: set ${KEY_ENV}, or point --caption-endpoint "
                f"(or ${ENDPOINT_ENV}) at a local server such as http://localhost:11434/v1."
            )

    def prepare(self) -> None:
        """One tiny request, so a wrong key, model or endpoint fails before a long indexing pass, not after."""
        if not self._verified:
            from PIL import Image

            self._caption(Image.new("RGB", (64, 64), (128, 128, 128)), first=True, max_tokens=1)
            self._verified = True

    def describe(self, images: list[Image.Image]) -> list[str]:
        """One caption per image, in order. The very first image goes alone, so a wrong key fails at once."""
        if not images:
            return []
        captions: list[str] = []
        if not self._verified:
            captions.append(self._caption(images[0], first=True))
            self._verified = True
            images = images[1:]
        if len(images) <= 1 or self.workers == 1:
            return captions + [self._caption(image) for image in images]
        return captions + self._in_parallel(images)

    def _in_parallel(self, images: list[Image.Image]) -> list[str]:
        """Captions from `workers` daemon threads; the first error (or Ctrl+C) returns at once and stops the rest.

        Daemon threads, not a ThreadPoolExecutor: its exit hook would join requests still in flight,
        so Ctrl+C could hang for a whole request timeout.
        """
        captions: list[str] = [""] * len(images)
        todo = iter(enumerate(images))
        lock = threading.Lock()
        finished: queue.SimpleQueue[BaseException | None] = queue.SimpleQueue()

        def work() -> None:
            while not self._stop.is_set():
                with lock:
                    item = next(todo, None)
                if item is None:
                    return
                try:
                    captions[item[0]] = self._caption(item[1])
                except BaseException as exc:
                    finished.put(exc)
                    return
                finished.put(None)

        for _ in range(min(self.workers, len(images))):
            threading.Thread(target=work, name="caption-api", daemon=True).start()
        try:
            for _ in images:
                error = finished.get()
                if error is not None:
                    raise error
        except BaseException:
            self._stop.set()
            self.close()  # in-flight requests end now rather than at their timeout
            raise
        return captions

    def _caption(self, image: Image.Image, first: bool = False, max_tokens: int | None = None) -> str:
        body = {
            "model": self.model,
            "messages": [{
                "role": "user",
                "content": [
                    {"type": "text", "text": self.prompt},
                    {"type": "image_url", "image_url": {"url": _data_url(image)}},
                ],
            }],
            "max_tokens": max_tokens or self.max_tokens,
            "temperature": 0,
        }
        return _message_text(self._post(body, first), self.model)

    def _post(self, body: dict[str, Any], first: bool) -> dict[str, Any]:
        """POST with the retry policy; errors that no retry can fix are raised at once."""
        httpx = _httpx()
        client = self._http()
        problem = ""
        for attempt in range(self.retry.attempts):
            if self._stop.is_set():
                raise CaptionApiError("Captioning was stopped.")
            retry_after = None
            try:
                response = client.post(self.url, json=body)
            except RuntimeError:  # the client was closed under us: the batch was abandoned
                raise CaptionApiError("Captioning was stopped.") from None
            except httpx.TimeoutException:
                problem = f"no answer within {self.timeout_s:g} s (raise --caption-timeout for slow models)"
            except httpx.TransportError as exc:
                problem = f"cannot reach {self.url}: {exc}"
                if first:
                    raise CaptionApiError(
                        f"Captioning failed: {problem}. Is the server running at that address?"
                    ) from None
            else:
                if response.status_code < 300:
                    return _json(response, self.url)
                if response.status_code not in (408, 429) and response.status_code < 500:
                    raise _refusal(response, self.model, self.url)
                retry_after = parse_retry_after(response.headers.get("retry-after"))
                problem = f"HTTP {response.status_code}{_server_says(response)}"
                if retry_after is not None and retry_after > self.retry.max_retry_after_s:
                    raise CaptionApiError(
                        f"The caption endpoint asks to wait {retry_after:.0f} s ({problem}). "
                        "Try again later, or lower --caption-workers; captions made so far are saved."
                    )
            if attempt + 1 < self.retry.attempts:
                self._sleep(self.retry.delay(attempt, retry_after))
        raise CaptionApiError(
            f"Captioning with {self.model} failed {self.retry.attempts} times: {problem}. "
            "Captions made so far are saved; run the same command again to continue."
        )

    def _http(self) -> Any:
        return self._client.get()

    def _open_client(self) -> Any:
        if self._stop.is_set():
            raise CaptionApiError("Captioning was stopped.")
        httpx = _httpx()
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        limits = httpx.Limits(max_connections=self.workers, max_keepalive_connections=self.workers)
        return httpx.Client(timeout=self.timeout_s, headers=headers, limits=limits)

    def unload(self) -> bool:
        """Close the connections (in-flight requests end now); a later caption opens new ones."""
        return self._client.unload()

    def close(self) -> None:
        self.unload()


def _close_client(client: Any) -> None:
    client.close()


def _httpx() -> Any:
    try:
        import httpx
    except ImportError:
        raise Unavailable("Captions over an API need httpx: pip install 'photoseek[vlm]'.") from None
    return httpx


def _json(response: Any, url: str) -> dict[str, Any]:
    try:
        payload = response.json()
    except ValueError:
        payload = None
    if not isinstance(payload, dict):
        raise CaptionApiError(f"{url} did not answer with JSON: is it an OpenAI-compatible /v1 endpoint?")
    return payload


def _message_text(payload: dict[str, Any], model: str) -> str:
    """The answer's text: a string, or (some servers) a list of text parts; whitespace collapsed."""
    try:
        content = payload["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        raise CaptionApiError(f"{model} answered without choices[0].message.content: {str(payload)[:200]}") from None
    if isinstance(content, list):
        content = " ".join(part.get("text", "") for part in content if isinstance(part, dict))
    return " ".join(str(content or "").split())


def _server_says(response: Any) -> str:
    """': <the server's error message>' when it sent one, shortened."""
    try:
        payload = response.json()
        message = payload.get("error", payload) if isinstance(payload, dict) else payload
        if isinstance(message, dict):
            message = message.get("message", message)
    except ValueError:
        message = response.text
    text = " ".join(str(message or "").split())[:300]
    return f": {text}" if text else ""


def _refusal(response: Any, model: str, url: str) -> CaptionApiError:
    """A clear error for a 4xx that no retry fixes: wrong key, wrong model, a request the model cannot take."""
    status = response.status_code
    said = _server_says(response)
    if status in (401, 403):
        hint = f"the API key was refused: set ${KEY_ENV} to a valid key for this endpoint"
    elif status == 404:
        hint = (
            f"no model {model!r} at {url}: check the model name (e.g. `ollama list`, or the server's /v1/models) "
            "and that --caption-endpoint ends in /v1"
        )
    else:
        hint = f"the request was rejected; check that {model!r} is a vision model that accepts images"
    return CaptionApiError(f"Captioning failed (HTTP {status}{said}): {hint}.")


def _data_url(image: Image.Image) -> str:
    from photoseek.imaging.encode import jpeg_data_url  # Pillow loads only when captioning

    return jpeg_data_url(image, MAX_SIDE)
