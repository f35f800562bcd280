"""JSON-LD contexts: which context a request uses, and short names <-> IRIs under it.

The platform's entity types and attributes are terms of the NGSI-LD default vocabulary
(``https://uri.etsi.org/ngsi-ld/default-context/Vehicle``), named after the Smart Data Models where
one fits, so a client that sends no context, or the core context, sees short names. The server never
fetches a context over the network: the core context (every version's URL) is known, a copy is served at
``/ngsi-ld/v1/jsonldContexts/...``; an inline context (an object in ``@context``) is applied; any other
remote context is refused with ``LdContextNotAvailable`` rather than guessed.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import cache
from importlib import resources

from cityos.ingest.ngsild.problems import NgsiError

CORE_CONTEXT_URL = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld"
CORE_FILE = "ngsi-ld-core-context-v1.8.jsonld"
DEFAULT_VOCAB = "https://uri.etsi.org/ngsi-ld/default-context/"
JSONLD_REL = "http://www.w3.org/ns/json-ld#context"
#: The core context under any version's URL (clients pin different ones).
_CORE_URL = re.compile(r"^https?://uri\.etsi\.org/ngsi-ld/v1/ngsi-ld-core-context(-v1\.\d+)?\.jsonld$")
_LINK = re.compile(r'<([^>]*)>\s*((?:;\s*[a-zA-Z]+\s*=\s*"?[^";,]*"?\s*)*)')
MAX_INLINE_TERMS = 1000


@cache
def core_context() -> dict:
    """The core context document (ETSI's, served as published)."""
    text = resources.files("cityos.ingest.ngsild").joinpath("contexts", CORE_FILE).read_text("utf-8")
    return json.loads(text)


@cache
def _core_terms() -> dict[str, str]:
    terms = {}
    ctx = core_context()["@context"]
    prefixes = {k: v for k, v in ctx.items() if isinstance(v, str) and v.endswith(("/", "#"))}
    for term, value in ctx.items():
        iri = value.get("@id") if isinstance(value, dict) else value
        if term.startswith("@") or not isinstance(iri, str) or term in prefixes:
            continue
        terms[term] = _apply_prefix(iri, prefixes)
    return terms


def _apply_prefix(iri: str, prefixes: dict[str, str]) -> str:
    prefix, sep, rest = iri.partition(":")
    return prefixes[prefix] + rest if sep and prefix in prefixes else iri


def is_core_url(url: str, local_base: str = "") -> bool:
    """Whether ``url`` names the core context (ETSI's URL of any version, or our local copy)."""
    return bool(_CORE_URL.match(url)) or (bool(local_base) and url.startswith(local_base)
                                          and url.endswith("/jsonldContexts/" + CORE_FILE))


@dataclass(frozen=True)
class Context:
    """The terms a request's context adds to the core context (short name -> IRI)."""

    terms: dict[str, str] = field(default_factory=dict)

    def expand(self, name: str) -> str:
        """The IRI of ``name`` (a short name, a compact ``prefix:suffix`` or already an IRI)."""
        if name in self.terms:
            return self.terms[name]
        prefix, sep, rest = name.partition(":")
        if sep and prefix in self.terms and not rest.startswith("//"):
            return self.terms[prefix] + rest
        if sep and (rest.startswith("//") or prefix == "urn"):
            return name
        return DEFAULT_VOCAB + name

    def compact(self, iri: str) -> str:
        """The short name of ``iri`` under this context (the IRI itself when no term names it)."""
        for term, value in self.terms.items():
            if value == iri:
                return term
        return iri.removeprefix(DEFAULT_VOCAB) if iri.startswith(DEFAULT_VOCAB) else iri


CORE = Context()


def _inline_terms(ctx: dict) -> dict[str, str]:
    if len(ctx) > MAX_INLINE_TERMS:
        raise NgsiError("BadRequestData", f"an inline @context may define at most {MAX_INLINE_TERMS} terms")
    prefixes = {k: v for k, v in ctx.items() if isinstance(v, str) and v.endswith(("/", "#"))}
    terms = {}
    for term, value in ctx.items():
        iri = value.get("@id") if isinstance(value, dict) else value
        if term.startswith("@") or not isinstance(iri, str) or term in _core_terms():
            continue  # the core context is protected: no redefinition of its terms
        terms[term] = _apply_prefix(iri, prefixes)
    return terms


def from_document(context: object, local_base: str = "") -> Context:
    """The context of a JSON-LD body's ``@context`` (a URL, an object or a list of them)."""
    items = context if isinstance(context, list) else [context]
    if len(items) > 20:
        raise NgsiError("BadRequestData", "@context lists at most 20 contexts")
    terms: dict[str, str] = {}
    for item in items:
        if isinstance(item, str):
            if not is_core_url(item, local_base):
                raise NgsiError("LdContextNotAvailable",
                                f"the context {item[:200]} cannot be retrieved: this server resolves no remote "
                                "contexts; send the core context and define your terms inline")
        elif isinstance(item, dict):
            terms.update(_inline_terms(item))
        else:
            raise NgsiError("BadRequestData", "@context must be a URL, an object or a list of them")
    return Context(terms)


def from_link_header(link: str | None, local_base: str = "") -> Context:
    """The context named by a request's ``Link`` header (the core context when there is none)."""
    if not link:
        return CORE
    for url, params in _LINK.findall(link):
        if f'rel="{JSONLD_REL}"' in params.replace("'", '"') or f"rel={JSONLD_REL}" in params:
            return from_document(url.strip(), local_base)
    return CORE


def link_header() -> str:
    """The ``Link`` header that names the context of a plain-JSON answer."""
    return f'<{CORE_CONTEXT_URL}>; rel="{JSONLD_REL}"; type="application/ld+json"'
