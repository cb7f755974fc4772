"""XMP sidecars shaped like the ones digiKam (Exiv2), darktable and Lightroom write, with and without
keywords and descriptions, for the export-xmp tests. Written for these tests, after the structure
of real files: their namespaces, attribute-form properties, history sequences, escaped XML in
values, comments, xpacket wrappers and padding."""

from __future__ import annotations

from dataclasses import dataclass

XPACKET_BEGIN = '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
XPACKET_END = "\n" + " " * 100 + "\n" + " " * 100 + '\n<?xpacket end="w"?>'


@dataclass(frozen=True)
class Shape:
    tool: str
    keywords: tuple[str, ...]
    description: str
    translation: str
    rating: int
    label: str
    gps: bool


def shapes(count: int = 50) -> list[Shape]:
    """`count` sidecars cycling through tools, with and without keywords, descriptions and the rest."""
    tools = ("digikam", "darktable", "lightroom")
    keyword_sets = ((), ("Family", "Holiday"), ("Ørsted, Hans", "Zürich & friends", "<b>bold</b>"), ("beach",))
    found = []
    for i in range(count):
        found.append(Shape(
            tool=tools[i % 3],
            keywords=keyword_sets[(i // 3) % len(keyword_sets)],
            description=("", "Grandma's 80th birthday", "Line one\nline two — “quoted”")[(i // 2) % 3],
            translation="Omas 80. Geburtstag" if i % 5 == 0 else "",
            rating=i % 6,
            label=("", "Red", "Green", "Purple")[i % 4],
            gps=i % 4 == 1,
        ))
    return found


def sidecar(shape: Shape) -> str:
    return {"digikam": _digikam, "darktable": _darktable, "lightroom": _lightroom}[shape.tool](shape)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def _bag(items: tuple[str, ...], kind: str = "Bag") -> str:
    return f"<rdf:{kind}>" + "".join(f"<rdf:li>{_escape(i)}</rdf:li>" for i in items) + f"</rdf:{kind}>"


def _description(shape: Shape) -> str:
    if not shape.description:
        return ""
    other = f'<rdf:li xml:lang="de-DE">{_escape(shape.translation)}</rdf:li>' if shape.translation else ""
    return (f'   <dc:description>\n    <rdf:Alt>\n     <rdf:li xml:lang="x-default">{_escape(shape.description)}'
            f"</rdf:li>{other}\n    </rdf:Alt>\n   </dc:description>\n")


def _digikam(shape: Shape) -> str:
    keywords = ""
    if shape.keywords:
        keywords = (
            f"   <digiKam:TagsList>{_bag(tuple('People/' + k for k in shape.keywords), 'Seq')}</digiKam:TagsList>\n"
            f"   <MicrosoftPhoto:LastKeywordXMP>{_bag(shape.keywords)}</MicrosoftPhoto:LastKeywordXMP>\n"
            f"   <lr:hierarchicalSubject>{_bag(tuple('People|' + k for k in shape.keywords))}"
            "</lr:hierarchicalSubject>\n"
            f"   <mediapro:CatalogSets>{_bag(tuple('People|' + k for k in shape.keywords))}</mediapro:CatalogSets>\n"
            f"   <dc:subject>{_bag(shape.keywords)}</dc:subject>\n"
        )
    categories = _escape('<Categories><Category Assigned="1">People<Category Assigned="1">Family</Category>'
                         "</Category></Categories>")
    gps = ' exif:GPSLatitude="41,8.9766N" exif:GPSLongitude="8,36.6594W" exif:GPSVersionID="2.0.0.0"'
    gps = gps if shape.gps else ""
    label = f' xmp:Label="{shape.label}"' if shape.label else ""
    return (
        XPACKET_BEGIN
        + '<x:xmpmeta xmlns:x="adobe:ns:meta/" x:xmptk="XMP Core 4.4.0-Exiv2">\n'
        ' <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">\n'
        '  <rdf:Description rdf:about=""\n'
        '    xmlns:exif="http://ns.adobe.com/exif/1.0/"\n'
        '    xmlns:tiff="http://ns.adobe.com/tiff/1.0/"\n'
        '    xmlns:xmp="http://ns.adobe.com/xap/1.0/"\n'
        '    xmlns:digiKam="http://www.digikam.org/ns/1.0/"\n'
        '    xmlns:MicrosoftPhoto="http://ns.microsoft.com/photo/1.0/"\n'
        '    xmlns:lr="http://ns.adobe.com/lightroom/1.0/"\n'
        '    xmlns:mediapro="http://ns.iview-multimedia.com/mediapro/1.0/"\n'
        '    xmlns:acdsee="http://ns.acdsee.com/iptc/1.0/"\n'
        '    xmlns:dc="http://purl.org/dc/elements/1.1/"\n'
        f'   tiff:Orientation="1" tiff:Make="FUJIFILM" tiff:Model="X-T3" xmp:Rating="{shape.rating}"{label}\n'
        f'   MicrosoftPhoto:Rating="{[0, 1, 25, 50, 75, 99][shape.rating]}" digiKam:ColorLabel="{len(shape.label)}"\n'
        f'   xmp:CreateDate="2023-07-14T18:03:22" exif:DateTimeOriginal="2023-07-14T18:03:22"{gps}\n'
        f'   acdsee:categories="{categories}">\n'
        + keywords
        + _description(shape)
        + "   <!-- written by digiKam 8.2.0 -->\n"
        "  </rdf:Description>\n"
        " </rdf:RDF>\n"
        "</x:xmpmeta>"
        + XPACKET_END
    )


def _darktable(shape: Shape) -> str:
    colours = "".join(f"<rdf:li>{n}</rdf:li>" for n in ([0] if shape.label == "Red" else [2, 4] if shape.label else []))
    keywords = ""
    if shape.keywords:
        keywords = (f"   <dc:subject>{_bag(shape.keywords)}</dc:subject>\n"
                    f"   <lr:hierarchicalSubject>{_bag(tuple('darktable|tagged|' + k for k in shape.keywords))}"
                    "</lr:hierarchicalSubject>\n")
    history = "".join(
        f'     <rdf:li darktable:num="{n}" darktable:operation="{op}" darktable:enabled="1" darktable:modversion="{v}"'
        f' darktable:params="{params}" darktable:multi_name="" darktable:multi_priority="0"'
        f' darktable:blendop_version="11" darktable:blendop_params="gz11eJxjYIAABiYGBgYA"/>\n'
        for n, (op, v, params) in enumerate((("rawprepare", 2, "00000000ffffff3f"), ("exposure", 6, "0000000000"),
                                             ("filmicrgb", 7, "gz03eJwzNDAAAQ==")))
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/" x:xmptk="XMP Core 4.4.0-Exiv2">\n'
        ' <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">\n'
        '  <rdf:Description rdf:about=""\n'
        '    xmlns:exif="http://ns.adobe.com/exif/1.0/"\n'
        '    xmlns:xmp="http://ns.adobe.com/xap/1.0/"\n'
        '    xmlns:xmpMM="http://ns.adobe.com/xap/1.0/mm/"\n'
        '    xmlns:dc="http://purl.org/dc/elements/1.1/"\n'
        '    xmlns:lr="http://ns.adobe.com/lightroom/1.0/"\n'
        '    xmlns:darktable="http://darktable.sf.net/"\n'
        f'   exif:DateTimeOriginal="2023:07:14 18:03:22" xmp:Rating="{shape.rating}"\n'
        '   xmpMM:DerivedFrom="DSCF1234.RAF" darktable:import_timestamp="63826123456000000"\n'
        '   darktable:change_timestamp="-1" darktable:export_timestamp="-1" darktable:print_timestamp="-1"\n'
        '   darktable:xmp_version="5" darktable:raw_params="0" darktable:auto_presets_applied="1"\n'
        '   darktable:history_end="3" darktable:iop_order_version="4">\n'
        + (f"   <darktable:colorlabels><rdf:Seq>{colours}</rdf:Seq></darktable:colorlabels>\n" if colours else "")
        + keywords
        + _description(shape)
        + "   <darktable:masks_history>\n    <rdf:Seq/>\n   </darktable:masks_history>\n"
        "   <darktable:history>\n    <rdf:Seq>\n" + history + "    </rdf:Seq>\n   </darktable:history>\n"
        "  </rdf:Description>\n"
        " </rdf:RDF>\n"
        "</x:xmpmeta>\n"
    )


def _lightroom(shape: Shape) -> str:
    keywords = ""
    if shape.keywords:
        keywords = (f"   <dc:subject>\n    {_bag(shape.keywords)}\n   </dc:subject>\n"
                    f"   <lr:hierarchicalSubject>\n    {_bag(tuple('Keywords|' + k for k in shape.keywords))}\n"
                    "   </lr:hierarchicalSubject>\n")
    gps = '\n   exif:GPSLatitude="38,43.338N"\n   exif:GPSLongitude="9,8.358W"' if shape.gps else ""
    label = f'\n   xmp:Label="{shape.label}"' if shape.label else ""
    return (
        '<x:xmpmeta xmlns:x="adobe:ns:meta/" x:xmptk="Adobe XMP Core 7.0-c000 1.000000, 0000/00/00-00:00:00        ">\n'
        ' <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">\n'
        '  <rdf:Description rdf:about=""\n'
        '    xmlns:xmp="http://ns.adobe.com/xap/1.0/"\n'
        '    xmlns:tiff="http://ns.adobe.com/tiff/1.0/"\n'
        '    xmlns:exif="http://ns.adobe.com/exif/1.0/"\n'
        '    xmlns:aux="http://ns.adobe.com/exif/1.0/aux/"\n'
        '    xmlns:photoshop="http://ns.adobe.com/photoshop/1.0/"\n'
        '    xmlns:xmpMM="http://ns.adobe.com/xap/1.0/mm/"\n'
        '    xmlns:stEvt="http://ns.adobe.com/xap/1.0/sType/ResourceEvent#"\n'
        '    xmlns:dc="http://purl.org/dc/elements/1.1/"\n'
        '    xmlns:lr="http://ns.adobe.com/lightroom/1.0/"\n'
        '    xmlns:crs="http://ns.adobe.com/camera-raw-settings/1.0/"\n'
        '   xmp:ModifyDate="2023-07-15T09:12:44+01:00" xmp:CreateDate="2023-07-14T18:03:22.41"\n'
        f'   xmp:Rating="{shape.rating if shape.rating < 5 else -1}"{label}\n'
        '   tiff:Make="Canon" tiff:Model="Canon EOS R6" exif:ExposureTime="1/250" exif:FNumber="28/10"\n'
        f'   aux:Lens="RF24-105mm F4 L IS USM" photoshop:DateCreated="2023-07-14T18:03:22.41"{gps}\n'
        '   xmpMM:DocumentID="xmp.did:8f3a1c2e-1b2d-4f5a-9c8e-0a1b2c3d4e5f"\n'
        '   crs:Version="15.4" crs:ProcessVersion="11.0" crs:WhiteBalance="As Shot" crs:Exposure2012="+0.35"\n'
        '   crs:Contrast2012="+12" crs:Highlights2012="-48" crs:Shadows2012="+31" crs:HasCrop="False"\n'
        '   crs:ToneCurveName2012="Linear" crs:CameraProfile="Adobe Standard" crs:HasSettings="True">\n'
        "   <xmpMM:History>\n    <rdf:Seq>\n"
        '     <rdf:li stEvt:action="saved" stEvt:instanceID="xmp.iid:01" stEvt:when="2023-07-15T09:12:44+01:00"'
        ' stEvt:softwareAgent="Adobe Photoshop Lightroom Classic 12.4 (Windows)" stEvt:changed="/metadata"/>\n'
        "     <rdf:li rdf:parseType=\"Resource\">\n      <stEvt:action>derived</stEvt:action>\n"
        "      <stEvt:parameters>converted from image/x-canon-cr3 to image/jpeg</stEvt:parameters>\n     </rdf:li>\n"
        "    </rdf:Seq>\n   </xmpMM:History>\n"
        "   <crs:ToneCurvePV2012>\n    <rdf:Seq>\n     <rdf:li>0, 0</rdf:li>\n     <rdf:li>255, 255</rdf:li>\n"
        "    </rdf:Seq>\n   </crs:ToneCurvePV2012>\n"
        + keywords
        + _description(shape)
        + "  </rdf:Description>\n"
        " </rdf:RDF>\n"
        "</x:xmpmeta>\n"
    )
