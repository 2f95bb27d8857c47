"""The art. 30 records draft (privacy.records.draft): every rule shape in words, in English and
Finnish, the hold policy without a customer's name, where the data lives and how long each part
of it is kept; names from the config escaped."""

from __future__ import annotations

from pathlib import Path

import pytest

from archivekeeper.config import load_config
from archivekeeper.privacy.records import draft

EXAMPLE = Path(__file__).parents[2] / "config" / "archivekeeper.yaml"

EXAMPLE_RULES = {
    "en": [
        "- Shoots of type `passikuva` (rule `passikuvat`): deleted 6 months after the shoot "
        "date.",
        "- RAW files (`*.cr2`, `*.cr3`, `*.nef`, `*.arw`, `*.dng`, `*.raf`, `*.orf`) in all "
        "shoots (rule `raakakuvat-vuosi`): deleted 1 year after the shoot date.",
        "- All shoots except those of type `passikuva` (rule `varmuuskopiot-vuosi`): kept at "
        "least 1 year after the shoot date.",
        "- All shoots (rule `kayttamattomat-viisi-vuotta`): deleted 5 years after the last use "
        "(the shoot date, the newest change to its files or a recorded re-order or "
        "re-delivery, whichever is latest).",
    ],
    "fi": [
        "- Kuvaukset, joiden tyyppi on `passikuva` (sääntö `passikuvat`): poistetaan 6 "
        "kuukauden kuluttua kuvauspäivästä.",
        "- RAW-tiedostot (`*.cr2`, `*.cr3`, `*.nef`, `*.arw`, `*.dng`, `*.raf`, `*.orf`) "
        "kaikista kuvauksista (sääntö `raakakuvat-vuosi`): poistetaan 1 vuoden kuluttua "
        "kuvauspäivästä.",
        "- Kaikki kuvaukset paitsi ne, joiden tyyppi on `passikuva` (sääntö "
        "`varmuuskopiot-vuosi`): säilytetään vähintään 1 vuoden ajan kuvauspäivästä lukien.",
        "- Kaikki kuvaukset (sääntö `kayttamattomat-viisi-vuotta`): poistetaan 5 vuoden "
        "kuluttua viimeisestä käytöstä (kuvauspäivä, tiedostojen viimeisin muutos tai kirjattu "
        "lisätilaus tai uusi toimitus, näistä myöhäisin).",
    ],
}

# Every other shape a rule can take: match and exclude on each key, files of each kind and a
# glob of no kind, the three base dates, every period unit.
SHAPES = """\
state_dir: {state}
volumes:
  - {{name: studio, path: {vols}/studio}}
shoots:
  patterns: ["{{date}} {{customer}}"]
rules:
  - {{name: weddings, match: {{type: wedding, volume: studio, path: "weddings/**"}},
     keep_for: 10 years, since: modified}}
  - {{name: one-customer, match: {{customer: "Salonen Ville"}}, delete_after: 2 weeks}}
  - {{name: not-studio, exclude: {{volume: studio, customer: "Salonen Ville"}},
     delete_after: 14 days}}
  - {{name: jpegs, match: {{files: "*.{{jpg,jpeg}}", type: school}}, exclude: {{path: "x/*"}},
     keep_for: 1 month, since: last_used}}
  - {{name: videos, match: {{files: "*.MOV"}}, delete_after: 3 months}}
  - {{name: sidecars, exclude: {{files: "*.xmp"}}, delete_after: 1 day}}
  - {{name: exports, match: {{files: "export_*.pdf"}}, delete_after: 1 week}}
holds:
  - {{customer: "Salonen Ville", kind: invoice, reason: "lasku 77 Salonen", until: 2027-01-31}}
  - {{customer: "Koivisto Aino", kind: invoice, reason: "lasku 78", until: 2027-01-31}}
  - {{customer: "Nieminen Olli", kind: collection, reason: "velka 2024-5"}}
  - {{path: "studio:2023-09-02 Lahtinen Eero/RAW", kind: legal-claim, reason: "Lahtinen"}}
safety:
  notice_period: 0 days
  trash_retention: 2 weeks
  require_approval: true
report:
  keep: 1 year
"""

SHAPE_RULES = {
    "en": [
        "- Shoots of type `wedding` on volume `studio` in folders matching `weddings/**` "
        "(rule `weddings`): kept at least 10 years after the newest change to the shoot's "
        "files.",
        "- Shoots of a customer named in the configuration (rule `one-customer`): deleted "
        "2 weeks after the shoot date.",
        "- All shoots except those of a customer named in the configuration or on volume "
        "`studio` (rule `not-studio`): deleted 14 days after the shoot date.",
        "- Image files (`*.jpg`, `*.jpeg`) in shoots of type `school`, except those in folders "
        "matching `x/*` (rule `jpegs`): kept at least 1 month after the last use (the shoot "
        "date, the newest change to its files or a recorded re-order or re-delivery, "
        "whichever is latest).",
        "- Video files (`*.mov`) in all shoots (rule `videos`): deleted 3 months after the "
        "shoot date.",
        "- All shoots, except sidecar files (`*.xmp`) (rule `sidecars`): deleted 1 day after "
        "the shoot date.",
        "- Files matching `export_*.pdf` in all shoots (rule `exports`): deleted 1 week after "
        "the shoot date.",
    ],
    "fi": [
        "- Kuvaukset, joiden tyyppi on `wedding` ja jotka ovat taltiolla `studio` ja joiden "
        "kansio vastaa mallia `weddings/**` (sääntö `weddings`): säilytetään vähintään 10 "
        "vuoden ajan kuvauksen tiedostojen viimeisimmästä muutoksesta lukien.",
        "- Kuvaukset, joiden asiakas on nimetty asetuksissa (sääntö `one-customer`): "
        "poistetaan 2 viikon kuluttua kuvauspäivästä.",
        "- Kaikki kuvaukset paitsi ne, joiden asiakas on nimetty asetuksissa tai jotka ovat "
        "taltiolla `studio` (sääntö `not-studio`): poistetaan 14 päivän kuluttua "
        "kuvauspäivästä.",
        "- Kuvatiedostot (`*.jpg`, `*.jpeg`) kuvauksista, joiden tyyppi on `school`, paitsi "
        "niistä, joiden kansio vastaa mallia `x/*` (sääntö `jpegs`): säilytetään vähintään "
        "1 kuukauden ajan viimeisestä käytöstä (kuvauspäivä, tiedostojen viimeisin muutos tai "
        "kirjattu lisätilaus tai uusi toimitus, näistä myöhäisin) lukien.",
        "- Videotiedostot (`*.mov`) kaikista kuvauksista (sääntö `videos`): poistetaan 3 "
        "kuukauden kuluttua kuvauspäivästä.",
        "- Kaikki kuvaukset, paitsi sivutiedostot (`*.xmp`) (sääntö `sidecars`): poistetaan 1 "
        "päivän kuluttua kuvauspäivästä.",
        "- Mallin `export_*.pdf` mukaiset tiedostot kaikista kuvauksista (sääntö `exports`): "
        "poistetaan 1 viikon kuluttua kuvauspäivästä.",
    ],
}


def shapes_config(tmp_path: Path, text: str = SHAPES):
    path = tmp_path / "ak.yaml"
    path.write_text(text.format(state=tmp_path / "state", vols=tmp_path / "vols"),
                    encoding="utf-8")
    return load_config(path)


def bullets(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("- ")]


@pytest.mark.parametrize("lang", ["en", "fi"])
def test_every_rule_of_the_example_config_is_said_in_plain_words(lang):
    text = draft(load_config(EXAMPLE), lang)
    assert [line for line in bullets(text)
            if "(rule `" in line or "(sääntö `" in line] == EXAMPLE_RULES[lang]


@pytest.mark.parametrize("lang", ["en", "fi"])
def test_every_other_rule_shape_is_said_in_plain_words(tmp_path, lang):
    text = draft(shapes_config(tmp_path), lang)
    assert [line for line in bullets(text)
            if "(rule `" in line or "(sääntö `" in line] == SHAPE_RULES[lang]


def test_the_example_config_says_where_the_data_lives_and_how_long_each_part_is_kept():
    en = draft(load_config(EXAMPLE), "en")
    assert en.startswith("# Record of processing activities (GDPR art. 30)")
    assert "[studio name]" in en
    assert "- Volume `studio`: `/srv/photos` (fixed disk)" in en
    assert "- Volume `varmuuskopio-1`: `/media/studio/VARMUUSKOPIO1` (removable drive)" in en
    assert "announced for 14 days" in en and "approved" not in en
    assert "restored for 30 days; after that it is deleted for good" in en
    assert "Stored reports are kept for 12 weeks in `/var/lib/archivekeeper/reports`" in en
    assert "kept for as long as the state directory (`/var/lib/archivekeeper`) exists" in en
    assert "keyed tokens in place of customer names" in en
    assert "## Erasure requests (art. 17)" in en and "recorded by token" in en
    assert "- 1 customer hold (invoice until 2027-01-31)" in en
    assert "- 1 shoot hold (legal-claim, no end date)" in en
    for kind in ("accounting", "invoice", "collection", "legal-claim", "restriction", "other"):
        assert f"- `{kind}`: " in en
    fi = draft(load_config(EXAMPLE), "fi")
    assert "[studion nimi]" in fi
    assert "- Taltio `varmuuskopio-1`: `/media/studio/VARMUUSKOPIO1` (irrotettava levy)" in fi
    assert "ilmoitettuna poistettavaksi 14 päivän ajan" in fi
    assert "palauttaa 30 päivän ajan" in fi
    assert "säilytetään 12 viikon ajan kansiossa `/var/lib/archivekeeper/reports`" in fi
    assert "- 1 asiakaskohtainen poistoesto (lasku, voimassa 31.1.2027 asti)" in fi
    assert "- 1 kuvauskohtainen poistoesto (oikeudellinen vaatimus, ei päättymispäivää)" in fi
    assert "## Pyynnöt tietojen poistamisesta (17 artikla)" in fi


@pytest.mark.parametrize("lang", ["en", "fi"])
def test_no_customer_a_config_hold_or_rule_names_appears_nor_a_hold_reason(tmp_path, lang):
    for config in (load_config(EXAMPLE), shapes_config(tmp_path)):
        text = draft(config, lang)
        for hold in config.holds:
            for value in (hold.customer, hold.shoot, hold.path, hold.reason):
                assert value is None or value not in text
        for word in ("Virtanen", "Lahtinen", "Salonen", "Koivisto", "Nieminen", "lasku 7",
                     "velka"):
            assert word not in text


def test_holds_are_counted_by_scope_with_their_kinds_and_ends(tmp_path):
    config = shapes_config(tmp_path)
    assert [b for b in bullets(draft(config, "en")) if b[2].isdigit()] == [
        "- 3 customer holds (2 × invoice until 2027-01-31; collection, no end date)",
        "- 1 folder or file hold (legal-claim, no end date)",
    ]
    assert [b for b in bullets(draft(config, "fi")) if b[2].isdigit()] == [
        "- 3 asiakaskohtaista poistoestoa (2 × lasku, voimassa 31.1.2027 asti; perintä, ei "
        "päättymispäivää)",
        "- 1 kansio- tai tiedostokohtainen poistoesto (oikeudellinen vaatimus, ei "
        "päättymispäivää)",
    ]


def test_no_notice_approval_report_keep_and_a_fixed_disk_only(tmp_path):
    config = shapes_config(tmp_path)
    en, fi = draft(config, "en"), draft(config, "fi")
    assert ("There is no notice period: data is deleted on the day its retention period "
            "ends. In addition, nothing is deleted before someone at the studio has approved "
            "it (`archivekeeper approve`).") in en
    assert "Ilmoitusaikaa ei ole" in fi and "hyväksynyt poiston" in fi
    assert "restored for 2 weeks" in en and "palauttaa 2 viikon ajan" in fi
    assert f"kept for 1 year in `{tmp_path}/state/reports`" in en
    assert "säilytetään 1 vuoden ajan" in fi
    assert "removable" not in en and "sent by e-mail" not in en


def test_a_config_without_rules_or_holds_says_so(tmp_path):
    text = SHAPES[:SHAPES.index("rules:")] + "safety: {{notice_period: 1 day}}\n"
    config = shapes_config(tmp_path, text)
    en, fi = draft(config, "en"), draft(config, "fi")
    assert "No retention rules are configured: nothing is deleted automatically." in en
    assert "There are no holds in the configuration now." in en
    assert "announced for 1 day:" in en and "poistettavaksi 1 päivän ajan" in fi
    assert "Säilytyssääntöjä ei ole asetettu" in fi and "Asetuksissa ei nyt ole poistoestoja." in fi


def test_names_from_the_config_are_escaped_and_cannot_break_the_markdown(tmp_path):
    text = SHAPES.replace("name: weddings,", 'name: "evil\\u202e\\e[31m`x",').replace(
        'path: "weddings/**"', 'path: "we\\u2028dd/**"')
    en = draft(shapes_config(tmp_path, text), "en")
    assert "(rule `` evil\\u202e\\x1b[31m`x ``)" in en
    assert "`we\\u2028dd/**`" in en
    assert not any(c in en for c in "\u202e\x1b\u2028")


def test_another_language_is_refused(tmp_path):
    with pytest.raises(ValueError, match="'de' is not a language"):
        draft(load_config(EXAMPLE), "de")
