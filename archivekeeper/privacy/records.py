"""The retention part of the GDPR art. 30 record of processing activities, drafted from the
config (SPEC `records`) in English or Finnish, as markdown. Pure: no I/O, no clock.

The record names no customer: a rule that matches a customer, and the config's holds, are
described without the name (a hold is counted by scope, kind and end date only). Names and
paths taken from the config are escaped as on a terminal and set as code.
"""

from __future__ import annotations

import re
from collections import Counter
from datetime import date

from archivekeeper.core.durations import Period
from archivekeeper.core.model import HOLD_KINDS, Match, Rule
from archivekeeper.index.filelist import IMAGE_EXT, RAW_EXT, SIDECAR_EXT, VIDEO_EXT
from archivekeeper.logs import show_path

LANGUAGES = ("en", "fi")

# Finnish period words: the genitive that follows a numeral ("6 kuukauden kuluttua", "1 vuoden
# ajan"). It stays singular after every number: "5 vuoden", never "vuosien".
_FI_GENITIVE = {"days": "päivän", "weeks": "viikon", "months": "kuukauden", "years": "vuoden"}

_EXTENSION_GLOB = re.compile(r"\*\.(?:\{([a-z0-9]+(?:,[a-z0-9]+)*)\}|([a-z0-9]+))", re.I)
_FILE_KINDS = (("raw", RAW_EXT), ("image", IMAGE_EXT), ("video", VIDEO_EXT),
               ("sidecar", SIDECAR_EXT))

_TEXT = {
    "en": {
        "title": "# Record of processing activities (GDPR art. 30): retention and deletion",
        "intro": (
            "Draft written by archivekeeper from its configuration. The controller completes "
            "the parts in [brackets], checks the text against the privacy notice and keeps it "
            "with the rest of the record."),
        "controller": [
            "- Controller: [studio name], [business ID], [address]",
            "- Contact person for data protection: [name, e-mail, phone]",
            "- Purposes of processing: [photographing customers, delivering the photographs, "
            "re-orders, backups]",
            "- Data subjects and personal data: the studio's customers; their photographs, and "
            "their names as the names of the shoot folders carry them (a folder names the "
            "customer and the shoot date, sometimes the type of shoot)",
        ],
        "rules_heading": "## Retention periods",
        "rules_intro": (
            "A delete rule sets the longest time data is kept, a keep rule the shortest. Where "
            "both apply to the same files, they are kept until the later date; of several "
            "delete rules, the earliest date applies. Files no delete rule covers are not "
            "deleted automatically, and nothing outside a shoot folder is ever deleted."),
        "no_rules": "No retention rules are configured: nothing is deleted automatically.",
        "rule": "- {subject} (rule {name}): {action}.",
        "delete": "deleted {period} after {base}",
        "keep": "kept at least {period} after {base}",
        "base": {
            "shoot_date": "the shoot date",
            "last_used": "the last use (the shoot date, the newest change to its files or a "
                         "recorded re-order or re-delivery, whichever is latest)",
            "modified": "the newest change to the shoot's files",
        },
        "notice_heading": "## Notice before deletion",
        "notice": (
            "Nothing is deleted before it has been announced for {period}: the weekly report "
            "lists what is about to be deleted."),
        "no_notice": ("There is no notice period: data is deleted on the day its retention "
                      "period ends."),
        "approval": ("In addition, nothing is deleted before someone at the studio has "
                     "approved it (`archivekeeper approve`)."),
        "holds_heading": "## Holds: data kept longer",
        "holds_intro": (
            "A hold keeps a customer's data, one shoot or one folder from being deleted, "
            "whatever the rules say. Holds always win: over every retention rule, and also "
            "over an erasure request (art. 17) where the law or a pending matter requires the "
            "data to be kept. Each hold has a kind:"),
        "kinds": {
            "accounting": "- `accounting`: accounting records the law requires to be kept",
            "invoice": "- `invoice`: an unpaid invoice",
            "collection": "- `collection`: debt collection",
            "legal-claim": "- `legal-claim`: the establishment, exercise or defence of legal "
                           "claims (art. 17(3)(e))",
            "restriction": "- `restriction`: processing restricted at the data subject's "
                           "request (art. 18)",
            "other": "- `other`: another reason, written down with the hold",
        },
        "holds_end": (
            "A hold may have an end date, the last day it holds; one without an end date "
            "holds until it is released. The end of a hold is recorded in the audit log."),
        "config_holds": "Holds in the configuration now (customers are not named here):",
        "no_config_holds": "There are no holds in the configuration now.",
        "cli_holds": (
            "Holds added with `archivekeeper hold add` are listed by `archivekeeper hold "
            "list`, which flags one with no end date that is over a year old for review."),
        "scope": {"customer": ("customer hold", "customer holds"),
                  "shoot": ("shoot hold", "shoot holds"),
                  "path": ("folder or file hold", "folder or file holds")},
        "kind_names": dict(zip(HOLD_KINDS, HOLD_KINDS, strict=True)),
        "until": "{kind} until {date}",
        "open": "{kind}, no end date",
        "storage_heading": "## Where the data is stored",
        "volume": "- Volume {name}: {path} ({where})",
        "fixed": "fixed disk",
        "removable": "removable drive",
        "removable_note": (
            "Nothing on a removable drive is deleted while it is not connected; what has "
            "become due is deleted once it is connected again."),
        "index": (
            "The index of the shoots (customer names, folder names, dates and file lists) is "
            "kept in {state_dir}, readable by the archivekeeper service only."),
        "trash_heading": "## Deleted files",
        "trash": (
            "A file due for deletion is first moved to the trash folder of its own drive "
            "(`.archivekeeper/trash/`), where it can be restored for {period}; after that it "
            "is deleted for good."),
        "logs_heading": "## Reports and the audit log",
        "reports": (
            "- The weekly report names the shoots about to be deleted and those deleted. "
            "Stored reports are kept for {period} in {dir} and then deleted."),
        "mailed": " The report is sent by e-mail to {to}.",
        "audit": (
            "- The audit log ({log}) records every deletion, restore, hold, erasure and "
            "refusal, with keyed tokens in place of customer names and paths. It is kept for "
            "as long as the state directory ({state_dir}) exists."),
        "erasure_heading": "## Erasure requests (art. 17)",
        "erasure": (
            "An erasure request is carried out with `archivekeeper erase`: the customer's "
            "files are deleted for good, without going to the trash, on every connected "
            "drive, and on any other drive as soon as it is connected. The request is "
            "recorded by token (the customer's token, the date and the reason), never by "
            "name; a shoot of the customer dated on or before the request that turns up later "
            "(restored from a backup, say) is deleted too. Data under a hold is not erased "
            "while the hold lasts; the command says what was kept, so the customer can be "
            "told why."),
    },
    "fi": {
        "title": "# Seloste käsittelytoimista (tietosuoja-asetuksen 30 artikla): säilytys ja "
                 "poistaminen",
        "intro": (
            "archivekeeper laati tämän luonnoksen asetuksistaan. Rekisterinpitäjä täydentää "
            "hakasulkeissa olevat kohdat, tarkistaa tekstin tietosuojaselostetta vasten ja "
            "liittää sen muuhun selosteeseen."),
        "controller": [
            "- Rekisterinpitäjä: [studion nimi], [Y-tunnus], [osoite]",
            "- Tietosuoja-asioiden yhteyshenkilö: [nimi, sähköposti, puhelin]",
            "- Käsittelyn tarkoitukset: [asiakkaiden kuvaaminen, kuvien toimittaminen, "
            "lisätilaukset, varmuuskopiot]",
            "- Rekisteröidyt ja henkilötiedot: studion asiakkaat; heidän kuvansa sekä heidän "
            "nimensä kuvauskansioiden nimissä (kansion nimessä on asiakkaan nimi ja "
            "kuvauspäivä, joskus myös kuvauksen tyyppi)",
        ],
        "rules_heading": "## Säilytysajat",
        "rules_intro": (
            "Poistosääntö määrää, kuinka kauan tietoja enintään säilytetään, säilytyssääntö, "
            "kuinka kauan vähintään. Jos molemmat koskevat samoja tiedostoja, niitä säilytetään "
            "myöhempään päivään asti; useista poistosäännöistä sovelletaan aikaisinta päivää. "
            "Tiedostoja, joita mikään poistosääntö ei koske, ei poisteta automaattisesti, eikä "
            "kuvauskansioiden ulkopuolelta poisteta koskaan mitään."),
        "no_rules": "Säilytyssääntöjä ei ole asetettu: mitään ei poisteta automaattisesti.",
        "rule": "- {subject} (sääntö {name}): {action}.",
        "delete": "poistetaan {period} kuluttua {base}",
        "keep": "säilytetään vähintään {period} ajan {base} lukien",
        "base": {
            "shoot_date": "kuvauspäivästä",
            "last_used": "viimeisestä käytöstä (kuvauspäivä, tiedostojen viimeisin muutos tai "
                         "kirjattu lisätilaus tai uusi toimitus, näistä myöhäisin)",
            "modified": "kuvauksen tiedostojen viimeisimmästä muutoksesta",
        },
        "notice_heading": "## Ilmoitus ennen poistamista",
        "notice": (
            "Mitään ei poisteta, ennen kuin se on ollut ilmoitettuna poistettavaksi {period} "
            "ajan: viikkoraportti luettelee, mitä on tulossa poistettavaksi."),
        "no_notice": ("Ilmoitusaikaa ei ole: tiedot poistetaan sinä päivänä, jona niiden "
                      "säilytysaika päättyy."),
        "approval": ("Lisäksi mitään ei poisteta, ennen kuin joku studiossa on hyväksynyt "
                     "poiston (`archivekeeper approve`)."),
        "holds_heading": "## Poistoestot: pidempään säilytettävät tiedot",
        "holds_intro": (
            "Poistoesto estää asiakkaan, yksittäisen kuvauksen tai kansion tietojen "
            "poistamisen säännöistä riippumatta. Poistoesto menee aina kaiken edelle: se "
            "ohittaa kaikki säilytyssäännöt ja myös pyynnön tietojen poistamisesta (17 "
            "artikla), kun laki tai vireillä oleva asia edellyttää tietojen säilyttämistä. "
            "Jokaisella poistoestolla on laji:"),
        "kinds": {
            "accounting": "- kirjanpito (`accounting`): kirjanpitoaineisto, joka on lain "
                          "mukaan säilytettävä",
            "invoice": "- lasku (`invoice`): maksamaton lasku",
            "collection": "- perintä (`collection`): saatavan perintä",
            "legal-claim": "- oikeudellinen vaatimus (`legal-claim`): oikeudellisen vaatimuksen "
                           "laatiminen, esittäminen tai puolustaminen (17 artiklan 3 kohdan "
                           "e alakohta)",
            "restriction": "- käsittelyn rajoitus (`restriction`): rekisteröidyn pyytämä "
                           "käsittelyn rajoittaminen (18 artikla)",
            "other": "- muu (`other`): muu syy, joka kirjataan poistoeston yhteyteen",
        },
        "holds_end": (
            "Poistoestolla voi olla päättymispäivä, jonka loppuun asti se on voimassa; ilman "
            "päättymispäivää se on voimassa, kunnes se puretaan. Poistoeston päättyminen "
            "kirjataan tapahtumalokiin."),
        "config_holds": "Asetuksissa on nyt seuraavat poistoestot (asiakkaita ei nimetä tässä):",
        "no_config_holds": "Asetuksissa ei nyt ole poistoestoja.",
        "cli_holds": (
            "Komennolla `archivekeeper hold add` lisätyt poistoestot näkyvät komennolla "
            "`archivekeeper hold list`, joka merkitsee tarkistettaviksi yli vuoden vanhat "
            "poistoestot, joilla ei ole päättymispäivää."),
        "scope": {"customer": ("asiakaskohtainen poistoesto", "asiakaskohtaista poistoestoa"),
                  "shoot": ("kuvauskohtainen poistoesto", "kuvauskohtaista poistoestoa"),
                  "path": ("kansio- tai tiedostokohtainen poistoesto",
                           "kansio- tai tiedostokohtaista poistoestoa")},
        "until": "{kind}, voimassa {date} asti",
        "open": "{kind}, ei päättymispäivää",
        "kind_names": {"accounting": "kirjanpito", "invoice": "lasku", "collection": "perintä",
                       "legal-claim": "oikeudellinen vaatimus",
                       "restriction": "käsittelyn rajoitus", "other": "muu"},
        "storage_heading": "## Missä tiedot ovat",
        "volume": "- Taltio {name}: {path} ({where})",
        "fixed": "kiinteä levy",
        "removable": "irrotettava levy",
        "removable_note": (
            "Irrotettavalta levyltä ei poisteta mitään silloin, kun se ei ole kytkettynä; "
            "poistettavaksi erääntyneet tiedot poistetaan, kun levy kytketään taas."),
        "index": (
            "Kuvausten luettelo (asiakkaiden nimet, kansioiden nimet, päivät ja "
            "tiedostoluettelot) on kansiossa {state_dir}, ja vain archivekeeper-palvelu voi "
            "lukea sitä."),
        "trash_heading": "## Poistettavat tiedostot",
        "trash": (
            "Poistettavaksi erääntynyt tiedosto siirretään ensin oman levynsä roskakoriin "
            "(`.archivekeeper/trash/`), josta sen voi palauttaa {period} ajan; sen jälkeen se "
            "poistetaan lopullisesti."),
        "logs_heading": "## Raportit ja tapahtumaloki",
        "reports": (
            "- Viikkoraportti nimeää poistettavaksi tulevat ja poistetut kuvaukset. "
            "Tallennettuja raportteja säilytetään {period} ajan kansiossa {dir}, minkä "
            "jälkeen ne poistetaan."),
        "mailed": " Raportti lähetetään sähköpostilla osoitteisiin {to}.",
        "audit": (
            "- Tapahtumaloki ({log}) kirjaa jokaisen poiston, palautuksen, poistoeston, "
            "poistopyynnön ja kieltäytymisen. Asiakkaiden nimien ja polkujen tilalla "
            "siinä on avaimella muodostetut tunnisteet. Lokia säilytetään niin kauan kuin "
            "tilakansio ({state_dir}) on olemassa."),
        "erasure_heading": "## Pyynnöt tietojen poistamisesta (17 artikla)",
        "erasure": (
            "Poistopyyntö toteutetaan komennolla `archivekeeper erase`: asiakkaan tiedostot "
            "poistetaan lopullisesti, roskakorin ohi, kaikilta kytketyiltä levyiltä ja muilta "
            "levyiltä heti, kun ne kytketään. Pyyntö kirjataan tunnisteella (asiakkaan "
            "tunniste, päivä ja syy), ei nimellä. Jos asiakkaan kuvaus, joka on päivätty "
            "ennen pyyntöä tai samana päivänä, ilmestyy myöhemmin uudelleen (esimerkiksi "
            "varmuuskopiosta palautettuna), sekin poistetaan. Poistoeston alaisia tietoja ei "
            "poisteta niin kauan kuin esto on voimassa; komento kertoo, mitä jäi poistamatta, "
            "jotta asiakkaalle voidaan kertoa syy."),
    },
}


def draft(config, lang: str = "en") -> str:
    """Given a loaded config (config.schema.Config) and a language (LANGUAGES), return the
    markdown draft. Raise ValueError for another language."""
    if lang not in LANGUAGES:
        raise ValueError(f"{lang!r} is not a language of the record (one of "
                         f"{', '.join(LANGUAGES)})")
    t = _TEXT[lang]
    state_dir = str(config.state_dir)
    safety, report = config.safety, config.report
    lines = [t["title"], "", t["intro"], "", *t["controller"], "", t["rules_heading"], "",
             t["rules_intro"], ""]
    rules = config.model_rules()
    lines += [_rule_line(rule, lang) for rule in rules] or [t["no_rules"]]
    lines += ["", t["notice_heading"], ""]
    notice = (t["notice"].format(period=_period(safety.notice_period, lang))
              if safety.notice_period.count else t["no_notice"])
    lines.append(notice + (" " + t["approval"] if safety.require_approval else ""))
    lines += ["", t["holds_heading"], "", t["holds_intro"], "",
              *(t["kinds"][kind] for kind in HOLD_KINDS), "", t["holds_end"], ""]
    held = _config_holds(config.holds, lang)
    lines += [t["config_holds"], "", *held] if held else [t["no_config_holds"]]
    lines += ["", t["cli_holds"], "", t["storage_heading"], ""]
    lines += [t["volume"].format(name=_code(v.name), path=_code(str(v.path)),
                                 where=t["removable" if v.removable else "fixed"])
              for v in config.volumes]
    if any(v.removable for v in config.volumes):
        lines += ["", t["removable_note"]]
    lines += ["", t["index"].format(state_dir=_code(state_dir)), "", t["trash_heading"], "",
              t["trash"].format(period=_period(safety.trash_retention, lang)), "",
              t["logs_heading"], ""]
    reports = t["reports"].format(period=_period(report.keep, lang),
                                  dir=_code(str(config.report_dir)))
    if report.email is not None:
        reports += t["mailed"].format(to=", ".join(_code(a) for a in report.email.to))
    lines += [reports, t["audit"].format(log=_code(f"{state_dir}/audit.jsonl"),
                                         state_dir=_code(state_dir)),
              "", t["erasure_heading"], "", t["erasure"], ""]
    return "\n".join(lines)


def _rule_line(rule: Rule, lang: str) -> str:
    t = _TEXT[lang]
    period = _period(rule.period, lang)
    action = t[rule.kind].format(period=period, base=t["base"][rule.since])
    return t["rule"].format(subject=_subject(rule, lang), name=_code(rule.name), action=action)


def _subject(rule: Rule, lang: str) -> str:
    """What a rule covers, in words: its files, the shoots its match: keys choose and those
    its exclude: keys leave out."""
    match, exclude = rule.match or Match(), rule.exclude or Match()
    chosen = _conditions(match, lang, " " if lang == "en" else " ja ")
    left_out = _conditions(exclude, lang, " or " if lang == "en" else " tai ")
    files = _files(match.files, lang) if match.files else None
    if lang == "en":
        shoots = f"shoots {chosen}" if chosen else "all shoots"
        if left_out:
            shoots += f"{',' if chosen else ''} except those {left_out}"
        text = f"{files} in {shoots}" if files else shoots
    else:
        if files:
            text = f"{files} kuvauksista, {chosen}" if chosen else f"{files} kaikista kuvauksista"
            text += f"{',' if chosen else ''} paitsi niistä, {left_out}" if left_out else ""
        else:
            text = f"kuvaukset, {chosen}" if chosen else "kaikki kuvaukset"
            text += f"{',' if chosen else ''} paitsi ne, {left_out}" if left_out else ""
    if exclude.files:
        text += (", except " if lang == "en" else ", paitsi ") + _files(exclude.files, lang)
    return text[0].upper() + text[1:]


def _conditions(match: Match, lang: str, joiner: str) -> str:
    """The shoot keys of a match: or exclude: block as phrases about shoots ("" for none).
    A customer key is not named: the record names no customer."""
    if lang == "en":
        phrases = {"type": "of type {}", "customer": "of a customer named in the configuration",
                   "volume": "on volume {}", "path": "in folders matching {}"}
    else:
        phrases = {"type": "joiden tyyppi on {}", "customer": "joiden asiakas on nimetty "
                   "asetuksissa", "volume": "jotka ovat taltiolla {}",
                   "path": "joiden kansio vastaa mallia {}"}
    return joiner.join(phrases[key].format(_code(value))
                       for key in ("type", "customer", "volume", "path")
                       if (value := getattr(match, key)) is not None)


def _files(glob: str, lang: str) -> str:
    """A files: glob in words: "RAW files (`*.cr2`, `*.nef`)" when every alternative is an
    extension of one kind of file, else the glob itself."""
    found = _EXTENSION_GLOB.fullmatch(glob)
    extensions = (found.group(1) or found.group(2)).lower().split(",") if found else []
    kind = next((k for k, known in _FILE_KINDS
                 if extensions and all(e in known for e in extensions)), None)
    if kind is None:
        return (f"files matching {_code(glob)}" if lang == "en"
                else f"mallin {_code(glob)} mukaiset tiedostot")
    names = {"en": {"raw": "RAW files", "image": "image files", "video": "video files",
                    "sidecar": "sidecar files"},
             "fi": {"raw": "RAW-tiedostot", "image": "kuvatiedostot",
                    "video": "videotiedostot", "sidecar": "sivutiedostot"}}[lang]
    return f"{names[kind]} ({', '.join(_code(f'*.{e}') for e in extensions)})"


def _config_holds(holds, lang: str) -> list[str]:
    """One line per scope: how many holds, and each one's kind and end date; never whom or
    what they hold, nor their reason (it may name the customer)."""
    t = _TEXT[lang]
    lines = []
    for scope in ("customer", "shoot", "path"):
        ends = Counter((h.kind, h.until) for h in holds if getattr(h, scope) is not None)
        if not ends:
            continue
        count = sum(ends.values())
        one, many = t["scope"][scope]
        items = []
        for (kind, until), n in sorted(ends.items(), key=lambda e: (e[0][1] is None,
                                                                     e[0][1] or date.min,
                                                                     e[0][0])):
            shown = t["kind_names"][kind]
            item = (t["until"].format(kind=shown, date=_day(until, lang)) if until
                    else t["open"].format(kind=shown))
            items.append(f"{n} × {item}" if n > 1 else item)
        lines.append(f"- {count} {one if count == 1 else many} ({'; '.join(items)})")
    return lines


def _period(period: Period, lang: str) -> str:
    """A period as the sentences use it: "6 months"; in Finnish the genitive, "6 kuukauden"."""
    if lang == "en":
        return str(period)
    return f"{period.count} {_FI_GENITIVE[period.unit]}"


def _day(day: date, lang: str) -> str:
    return day.isoformat() if lang == "en" else f"{day.day}.{day.month}.{day.year}"


def _code(text: str) -> str:
    """Text from the config as a markdown code span, escaped as on a terminal (show_path)."""
    shown = show_path(text)
    fence = "``" if "`" in shown else "`"
    pad = " " if "`" in shown else ""
    return f"{fence}{pad}{shown}{pad}{fence}"
