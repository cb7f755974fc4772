"""An XMP sidecar edited in place: photoseek's fields merged in, every other byte of meaning kept.

The packet is parsed with ElementTree, keeping comments and processing instructions, and written
back with the namespace prefixes the file used; what lies outside the `x:xmpmeta` element (the
`<?xpacket?>` wrapper, padding) is kept byte for byte. Only dc:description (its default language),
dc:subject and lr:hierarchicalSubject are touched, and within them only what photoseek wrote: the
`photoseek:` properties record it, so a later export replaces its own text and keywords (a removed
tag disappears) and never the ones the photographer or another tool wrote.
"""

from __future__ import annotations

import io
import re
import threading
import xml.etree.ElementTree as ET
from dataclasses import dataclass

X = "adobe:ns:meta/"
RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
DC = "http://purl.org/dc/elements/1.1/"
LR = "http://ns.adobe.com/lightroom/1.0/"
XML = "http://www.w3.org/XML/1998/namespace"
PHOTOSEEK = "https://pypi.org/project/photoseek/xmp/1.0/"
"""photoseek's own namespace: the record of what it wrote."""
_PREFIXES = {"x": X, "rdf": RDF, "dc": DC, "lr": LR, "photoseek": PHOTOSEEK}

_PACKET = re.compile(r"<(?:(\w+):)?xmpmeta\b.*?</(?(1)\1:)xmpmeta\s*>|<(?:\w+:)?RDF\b.*?</(?:\w+:)?RDF\s*>", re.S)
_NEW_PACKET = (
    '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
    f'<x:xmpmeta xmlns:x="{X}"><rdf:RDF xmlns:rdf="{RDF}"><rdf:Description rdf:about=""/></rdf:RDF></x:xmpmeta>\n'
    '<?xpacket end="w"?>\n'
)
_SERIALISING = threading.Lock()
"""ElementTree's prefix registry is global: one file is written at a time."""


class XmpError(ValueError):
    """A sidecar that is not an XMP packet photoseek can edit safely; it is left alone."""


@dataclass(frozen=True)
class OwnedFields:
    """photoseek's part of a sidecar: its text in the description and the keywords it added."""

    description: str = ""
    subjects: tuple[str, ...] = ()
    hierarchical: tuple[str, ...] = ()


@dataclass(frozen=True)
class Fields:
    """The whole of the three properties photoseek edits, as the sidecar holds them."""

    description: str = ""
    subjects: tuple[str, ...] = ()
    hierarchical: tuple[str, ...] = ()


class XmpDocument:
    """One sidecar's text, parsed; `merge` edits it, `text()` gives the new content."""

    def __init__(self, text: str | None = None) -> None:
        source = _NEW_PACKET if text is None else text
        match = _PACKET.search(source)
        if match is None:
            raise XmpError("no XMP packet in it")
        self._before, self._after = source[: match.start()], source[match.end() :]
        packet = match.group(0)
        try:
            self._prefixes = [ns for _, ns in ET.iterparse(io.StringIO(packet), events=("start-ns",))]
            parser = ET.XMLParser(target=ET.TreeBuilder(insert_comments=True, insert_pis=True))
            parser.feed(packet)
            self._root = parser.close()
        except ET.ParseError as exc:
            raise XmpError(f"not well-formed XML ({exc})") from None
        rdf = self._root if self._root.tag == f"{{{RDF}}}RDF" else self._root.find(f"{{{RDF}}}RDF")
        if rdf is None:
            raise XmpError("no rdf:RDF element in its XMP packet")
        self._rdf: ET.Element = rdf

    # -- reading ---------------------------------------------------------------------

    def fields(self) -> Fields:
        """The description (default language), subjects and hierarchical subjects as they stand."""
        item = self._default_description()
        return Fields(
            description=(item.text or "") if item is not None else "",
            subjects=tuple(self._items(DC, "subject")),
            hierarchical=tuple(self._items(LR, "hierarchicalSubject")),
        )

    def owned(self) -> OwnedFields:
        """What an earlier export recorded as its own."""
        return OwnedFields(
            description=self._text_property(PHOTOSEEK, "description"),
            subjects=tuple(self._items(PHOTOSEEK, "subjects")),
            hierarchical=tuple(self._items(PHOTOSEEK, "hierarchicalSubjects")),
        )

    # -- editing ---------------------------------------------------------------------

    def merge(self, ours: OwnedFields) -> bool:
        """Put `ours` in place of what photoseek wrote before; True when anything changed."""
        before = self.owned()
        current = self.fields()
        theirs_text = _without_suffix(current.description, before.description)
        description, owned_text = _joined(theirs_text, ours.description)
        subjects, owned_subjects = _merged(current.subjects, before.subjects, ours.subjects)
        hierarchical, owned_hierarchical = _merged(current.hierarchical, before.hierarchical, ours.hierarchical)
        wanted = Fields(description, subjects, hierarchical)
        record = OwnedFields(owned_text, owned_subjects, owned_hierarchical)
        if wanted == current and record == before:
            return False
        if description != current.description:
            self._set_description(description)
        if subjects != current.subjects:
            self._set_items(DC, "subject", subjects, "Bag")
        if hierarchical != current.hierarchical:
            self._set_items(LR, "hierarchicalSubject", hierarchical, "Bag")
        self._set_text_property(PHOTOSEEK, "description", record.description)
        self._set_items(PHOTOSEEK, "subjects", record.subjects, "Bag")
        self._set_items(PHOTOSEEK, "hierarchicalSubjects", record.hierarchical, "Bag")
        return True

    def is_blank(self) -> bool:
        """Whether it is, to the byte, an empty sidecar as photoseek creates them (so deleting it loses nothing)."""
        return self.text() == XmpDocument().text()

    def text(self) -> str:
        """The sidecar's new content: the untouched surroundings around the re-serialised packet."""
        with _SERIALISING:
            for prefix, uri in [*_PREFIXES.items(), *self._prefixes]:
                if prefix and not re.fullmatch(r"ns\d+", prefix):
                    ET.register_namespace(prefix, uri)
            packet = ET.tostring(self._root, encoding="unicode")
        return self._before + packet + self._after

    # -- internals -------------------------------------------------------------------

    def _descriptions(self) -> list[ET.Element]:
        return self._rdf.findall(f"{{{RDF}}}Description")

    def _property(self, namespace: str, name: str) -> ET.Element | None:
        for description in self._descriptions():
            element = description.find(f"{{{namespace}}}{name}")
            if element is not None:
                return element
        return None

    def _attribute_holder(self, namespace: str, name: str) -> ET.Element | None:
        """The rdf:Description holding the property as an attribute (the short form), if any."""
        key = f"{{{namespace}}}{name}"
        return next((d for d in self._descriptions() if key in d.attrib), None)

    def _new_property(self, namespace: str, name: str) -> ET.Element:
        """A new property element in the first rdf:Description (made when there is none)."""
        found = self._descriptions()
        description = found[0] if found else ET.SubElement(self._rdf, f"{{{RDF}}}Description", {f"{{{RDF}}}about": ""})
        element = ET.SubElement(description, f"{{{namespace}}}{name}")
        element.tail = "\n"
        return element

    def _items(self, namespace: str, name: str) -> list[str]:
        element = self._property(namespace, name)
        if element is None:
            holder = self._attribute_holder(namespace, name)
            return [holder.attrib[f"{{{namespace}}}{name}"]] if holder is not None else []
        items = [li.text or "" for li in element.iter(f"{{{RDF}}}li")]
        text = (element.text or "").strip()
        return items if items or not text else [text]

    def _set_items(self, namespace: str, name: str, items: tuple[str, ...], kind: str) -> None:
        """The property as a Bag of `items` (its existing container kept), or gone when there are none."""
        holder = self._attribute_holder(namespace, name)
        if holder is not None:
            del holder.attrib[f"{{{namespace}}}{name}"]
        element = self._property(namespace, name)
        if not items:
            if element is not None:
                self._remove(element)
            return
        if element is None:
            element = self._new_property(namespace, name)
        container = next((c for c in element if c.tag in (f"{{{RDF}}}Bag", f"{{{RDF}}}Seq", f"{{{RDF}}}Alt")), None)
        if container is None:
            tail = element.tail
            element.clear()
            element.tail = tail
            container = ET.SubElement(element, f"{{{RDF}}}{kind}")
        for li in container.findall(f"{{{RDF}}}li"):
            container.remove(li)
        for item in items:
            ET.SubElement(container, f"{{{RDF}}}li").text = item

    def _text_property(self, namespace: str, name: str) -> str:
        element = self._property(namespace, name)
        if element is not None:
            return element.text or ""
        holder = self._attribute_holder(namespace, name)
        return holder.attrib[f"{{{namespace}}}{name}"] if holder is not None else ""

    def _set_text_property(self, namespace: str, name: str, text: str) -> None:
        holder = self._attribute_holder(namespace, name)
        if holder is not None:
            del holder.attrib[f"{{{namespace}}}{name}"]
        element = self._property(namespace, name)
        if not text:
            if element is not None:
                self._remove(element)
            return
        if element is None:
            element = self._new_property(namespace, name)
        element.text = text

    def _default_description(self) -> ET.Element | None:
        """The x-default item of dc:description (else its first item, else the element itself)."""
        element = self._property(DC, "description")
        if element is None:
            return None
        items = list(element.iter(f"{{{RDF}}}li"))
        if not items:
            return element if (element.text or "").strip() else None
        return next((li for li in items if li.get(f"{{{XML}}}lang") == "x-default"), items[0])

    def _set_description(self, text: str) -> None:
        """The default-language description becomes `text`; other languages stay as they are."""
        element = self._property(DC, "description")
        item = self._default_description()
        if item is not None and element is not None and item is not element:  # an item of the element
            if text:
                item.text = text
                return
            parent = next(p for p in element.iter() if item in list(p))
            parent.remove(item)
            if not list(element.iter(f"{{{RDF}}}li")):
                self._remove(element)
            return
        if element is not None:
            self._remove(element)
        if text:
            alt = ET.SubElement(self._new_property(DC, "description"), f"{{{RDF}}}Alt")
            ET.SubElement(alt, f"{{{RDF}}}li", {f"{{{XML}}}lang": "x-default"}).text = text

    def _remove(self, element: ET.Element) -> None:
        for description in self._descriptions():
            if element in list(description):
                description.remove(element)
                return


def _without_suffix(text: str, ours: str) -> str:
    """The description without the part an earlier export appended (kept whole if it was edited)."""
    if ours and text.endswith(ours):
        return text[: -len(ours)].rstrip()
    return text


def _joined(theirs: str, ours: str) -> tuple[str, str]:
    """(the new description, the part of it that is ours): theirs first, ours after a blank line."""
    if not ours or ours in theirs:
        return theirs, ""
    return (f"{theirs}\n\n{ours}" if theirs else ours), ours


def _merged(
    current: tuple[str, ...], before: tuple[str, ...], ours: tuple[str, ...]
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(the new list, the items of it that are ours): theirs in their order, then ours they lack."""
    theirs = [item for item in current if item not in before]
    added = [item for item in dict.fromkeys(ours) if item not in theirs]
    return tuple(theirs + added), tuple(added)
