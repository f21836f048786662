"""Prefecture-level divisions of China by GB/T 2260 (codes of administrative divisions): the
cities the national air network assesses, with a representative position.

Municipalities (Beijing, Tianjin, Shanghai, Chongqing) use their province-level code, as the
national assessment lists them. The table holds the cities airwater knows by name (the
simulated network and the station lists of the national network); a city not in it gets a
derived code (``ingest.importer.derived_city_code``), never a made-up GB/T 2260 one."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Division:
    """A prefecture-level city or municipality."""

    name: str
    code: str  # GB/T 2260 six-digit code
    province: str
    latitude: float
    longitude: float


PREFECTURES: tuple[Division, ...] = (
    # North China Plain (Jing-Jin-Ji)
    Division("Beijing", "110000", "Beijing", 39.904, 116.407),
    Division("Tianjin", "120000", "Tianjin", 39.125, 117.190),
    Division("Shijiazhuang", "130100", "Hebei", 38.042, 114.514),
    Division("Tangshan", "130200", "Hebei", 39.630, 118.180),
    Division("Handan", "130400", "Hebei", 36.625, 114.539),
    Division("Baoding", "130600", "Hebei", 38.874, 115.464),
    # Fen-Wei plain
    Division("Taiyuan", "140100", "Shanxi", 37.870, 112.549),
    Division("Xi'an", "610100", "Shaanxi", 34.341, 108.940),
    # Central plain and Shandong
    Division("Zhengzhou", "410100", "Henan", 34.747, 113.625),
    Division("Xuzhou", "320300", "Jiangsu", 34.205, 117.285),
    Division("Jinan", "370100", "Shandong", 36.651, 117.120),
    Division("Qingdao", "370200", "Shandong", 36.067, 120.383),
    # Northeast
    Division("Shenyang", "210100", "Liaoning", 41.805, 123.432),
    Division("Dalian", "210200", "Liaoning", 38.914, 121.615),
    Division("Changchun", "220100", "Jilin", 43.817, 125.324),
    Division("Harbin", "230100", "Heilongjiang", 45.803, 126.535),
    # Northwest
    Division("Hohhot", "150100", "Inner Mongolia", 40.842, 111.749),
    Division("Lanzhou", "620100", "Gansu", 36.061, 103.834),
    Division("Xining", "630100", "Qinghai", 36.617, 101.778),
    Division("Yinchuan", "640100", "Ningxia", 38.487, 106.231),
    Division("Urumqi", "650100", "Xinjiang", 43.825, 87.617),
    # Tibetan plateau
    Division("Lhasa", "540100", "Tibet", 29.650, 91.132),
    # Yangtze River Delta
    Division("Shanghai", "310000", "Shanghai", 31.230, 121.474),
    Division("Nanjing", "320100", "Jiangsu", 32.060, 118.797),
    Division("Wuxi", "320200", "Jiangsu", 31.491, 120.312),
    Division("Suzhou", "320500", "Jiangsu", 31.299, 120.585),
    Division("Hangzhou", "330100", "Zhejiang", 30.274, 120.155),
    Division("Ningbo", "330200", "Zhejiang", 29.868, 121.544),
    Division("Hefei", "340100", "Anhui", 31.821, 117.227),
    # Middle Yangtze
    Division("Wuhan", "420100", "Hubei", 30.593, 114.305),
    Division("Changsha", "430100", "Hunan", 28.228, 112.939),
    Division("Nanchang", "360100", "Jiangxi", 28.682, 115.858),
    # Sichuan basin
    Division("Chengdu", "510100", "Sichuan", 30.573, 104.066),
    Division("Chongqing", "500000", "Chongqing", 29.563, 106.551),
    # Southeast coast
    Division("Fuzhou", "350100", "Fujian", 26.074, 119.296),
    Division("Xiamen", "350200", "Fujian", 24.480, 118.089),
    # Pearl River Delta
    Division("Guangzhou", "440100", "Guangdong", 23.129, 113.264),
    Division("Shenzhen", "440300", "Guangdong", 22.543, 114.058),
    # Southwest
    Division("Nanning", "450100", "Guangxi", 22.817, 108.366),
    Division("Guiyang", "520100", "Guizhou", 26.647, 106.630),
    Division("Kunming", "530100", "Yunnan", 25.038, 102.718),
    # Hainan
    Division("Haikou", "460100", "Hainan", 20.044, 110.199),
)


def city_code(name: str) -> str | None:
    """The GB/T 2260 code of a prefecture-level city by its English name (any case)."""
    return _CODE_BY_NAME.get(name.strip().lower())


_CODE_BY_NAME = {division.name.lower(): division.code for division in PREFECTURES}
