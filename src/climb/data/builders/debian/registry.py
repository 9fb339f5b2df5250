"""Which Debian packages hold each language's text (:data:`PACKAGES`).

To add a language, add one line to the table in :func:`_registry`: the package of each kind
(translated man pages, LibreOffice help, Debian reference, Debian handbook, installation guide,
fortunes) that has it, with the package's own language tag where it differs from the code.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


# ----------------------------------------------------------------------------- package registry
@dataclass(frozen=True)
class Package:
    """A Debian package and how to find one language's text in it.

    ``kind`` is one of ``man``, ``lohelp``, ``debref``, ``handbook``, ``instguide``, ``fortunes``;
    ``subdir`` is the package's own language tag where it differs from the language code
    (``pt_BR``, ``zh_CN``, ``de-DE`` …); ``""`` for untranslated English man pages.
    """

    name: str
    kind: str
    subdir: str


def _lang_packages(lang: str, *, man: str | None, man_dir: str | None, lohelp: str | None,
                   debref: str | None, handbook: str | None, instguide: str | None,
                   fortunes: Iterable[str] = ()) -> list[Package]:  # fmt: skip
    out: list[Package] = []
    if man:
        out.append(Package(man, "man", man_dir if man_dir is not None else lang))
    if lohelp:
        out.append(Package(f"libreoffice-help-{lohelp}", "lohelp", lohelp))
    if debref:
        out.append(Package(f"debian-reference-{debref}", "debref", debref))
    if handbook:
        out.append(Package("debian-handbook", "handbook", handbook))
    if instguide:
        out.append(Package("installation-guide-amd64", "instguide", instguide))
    for f in fortunes:
        out.append(Package(f, "fortunes", lang))
    return out


def _registry() -> dict[str, list[Package]]:
    spec: dict[str, dict[str, Any]] = {
        "ar": dict(handbook="ar-MA"),
        "ca": dict(lohelp="ca", handbook="ca-ES", instguide="ca"),
        "cs": dict(man="manpages-cs", lohelp="cs", handbook="cs-CZ", instguide="cs", fortunes=["fortunes-cs"]),
        "da": dict(man="manpages-da", lohelp="da", handbook="da-DK", instguide="da"),
        "de": dict(man="manpages-de", lohelp="de", debref="de", handbook="de-DE", instguide="de", fortunes=["fortunes-de"]),
        "el": dict(man="manpages-el", lohelp="el", handbook="el-GR", instguide="el"),
        "en": dict(man="manpages", man_dir="", lohelp="en-us", debref="en", handbook="en-US", instguide="en", fortunes=["fortunes", "fortunes-min"]),
        "es": dict(man="manpages-es", lohelp="es", debref="es", handbook="es-ES", instguide="es", fortunes=["fortunes-es"]),
        "fa": dict(handbook="fa-IR"),
        "fr": dict(man="manpages-fr", lohelp="fr", debref="fr", handbook="fr-FR", instguide="fr"),
        "hi": dict(lohelp="hi"),
        "id": dict(man="manpages-id", handbook="id-ID", instguide="id"),
        "it": dict(man="manpages-it", lohelp="it", debref="it", handbook="it-IT", instguide="it", fortunes=["fortunes-it"]),
        "ja": dict(man="manpages-ja", lohelp="ja", debref="ja", handbook="ja-JP", instguide="ja"),
        "ko": dict(lohelp="ko", handbook="ko-KR", instguide="ko"),
        "nl": dict(man="manpages-nl", lohelp="nl", handbook="nl-NL", instguide="nl"),
        "pl": dict(man="manpages-pl", lohelp="pl", handbook="pl-PL", fortunes=["fortunes-pl"]),
        "pt": dict(man="manpages-pt-br", man_dir="pt_BR", lohelp="pt-br", debref="pt", handbook="pt-BR", instguide="pt"),
        "ro": dict(man="manpages-ro", handbook="ro-RO", instguide="ro"),
        "ru": dict(man="manpages-ru", lohelp="ru", handbook="ru-RU", instguide="ru", fortunes=["fortunes-ru"]),
        "sv": dict(man="manpages-sv", lohelp="sv", handbook="sv-SE", instguide="sv"),
        "tr": dict(man="manpages-tr", lohelp="tr", handbook="tr-TR"),
        "uk": dict(man="manpages-uk"),
        "vi": dict(man="manpages-vi", lohelp="vi", handbook="vi-VN", instguide="vi"),
        "zh": dict(man="manpages-zh", man_dir="zh_CN", lohelp="zh-cn", debref="zh-cn", handbook="zh-CN", instguide="zh_CN", fortunes=["fortunes-zh"]),
    }  # fmt: skip
    out: dict[str, list[Package]] = {}
    for lang, kw in spec.items():
        args: dict[str, Any] = {
            k: None for k in ("man", "man_dir", "lohelp", "debref", "handbook", "instguide")
        }
        args.update(kw)
        out[lang] = _lang_packages(lang, **args)
    out["en"].insert(1, Package("manpages-dev", "man", ""))
    return out


PACKAGES: dict[str, list[Package]] = _registry()
"""Language code -> the packages (in processing order) that hold its text."""
