"""Shared vocabulary: the names used in files, APIs and tests, with their Chinese labels.

Values are the machine names (stored in the database and in the API); ``zh`` is what the
UI and exports show.
"""

from __future__ import annotations

from enum import StrEnum

from geoapp.domain.messages import Text as _l


class _Labelled(StrEnum):
    """A string enum whose members carry a Chinese and an English label."""

    zh: str
    en: str

    def __new__(cls, value: str, zh: str, en: str):
        obj = str.__new__(cls, value)
        obj._value_ = value
        obj.zh = zh
        obj.en = en
        return obj

    @classmethod
    def parse(cls, text: str):
        """Accept the machine name, the Chinese label or the English label."""
        t = str(text).strip()
        for m in cls:
            if t in (m.value, m.zh) or t.lower() == m.en.lower():
                return m
        allowed = ", ".join(f"{m.value}（{m.zh}）" for m in cls)
        raise ValueError(_l("未知的值“%(value)s”；应为以下之一：%(allowed)s", value=text,
                            allowed=allowed))


class SiteType(_Labelled):
    ENTERPRISE = ("enterprise", "工业企业", "Industrial enterprise")
    LIVESTOCK_FARM = ("livestock_farm", "畜禽养殖场", "Livestock farm")
    SCATTERED_WORKSHOP = ("scattered_workshop", "散乱污作坊", "Scattered polluting workshop")


class Classification(_Labelled):
    RELOCATE = ("relocate", "搬迁升级", "Relocate and upgrade")
    UPGRADE = ("upgrade", "改造提升", "Upgrade in place")
    CLOSE = ("close", "原址关闭", "Close on site")
    CONVERT = ("convert", "退二进三", "Convert to services")
    BANKRUPT = ("bankrupt", "破产", "Bankruptcy")


class Stage(_Labelled):
    NOT_STARTED = ("not_started", "未启动", "Not started")
    STARTED = ("started", "已启动", "Started")
    COMPLETED = ("completed", "已完成", "Completed")
    ACCEPTED = ("accepted", "已验收销号", "Accepted and closed")


class WorkshopStatus(_Labelled):
    """散乱污 register status."""

    FOUND = ("found", "已排查", "Found")
    BANNED = ("banned", "已取缔", "Banned")
    RECTIFYING = ("rectifying", "整改中", "Under rectification")


class ComplaintCategory(_Labelled):
    AIR = ("air", "大气", "Air")
    NOISE = ("noise", "噪声", "Noise")
    WATER = ("water", "水", "Water")
    SOLID_WASTE = ("solid_waste", "固废", "Solid waste")
    OTHER = ("other", "其他", "Other")


#: Key industries for remediation (DOMAIN.md), as used in the ``industry`` field of sites.
KEY_INDUSTRIES: tuple[str, ...] = (
    "钢铁", "铸造", "焦化", "火电", "化工", "煤化工", "水泥", "家具", "建材",
    "砖瓦", "陶瓷", "木材加工", "石材加工", "砂石料场", "水泥预制", "商混站",
)

SQM_PER_MU = 10000.0 / 15.0  # 1 亩 = 666.67 m²; 15 亩 = 1 公顷


def mu_to_hectares(mu: float) -> float:
    return mu / 15.0


def sqm_to_mu(sqm: float) -> float:
    return sqm / SQM_PER_MU


class Role(_Labelled):
    """Account roles; each page names the least role it needs (admin may do everything)."""

    VIEWER = ("viewer", "查看", "Viewer")
    INSPECTOR = ("inspector", "执法检查", "Inspector")
    PLANNER = ("planner", "规划/搬迁办", "Planner")
    ADMIN = ("admin", "管理员", "Administrator")
