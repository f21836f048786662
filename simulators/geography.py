"""The real places the simulated network is built from: prefecture-level cities (GB/T 2260,
in standards.divisions) with their typical air quality, and national surface-water sections
on the major rivers and lakes with their typical class."""

from __future__ import annotations

from dataclasses import dataclass

from standards.divisions import PREFECTURES


@dataclass(frozen=True, slots=True)
class City:
    """A prefecture-level city (or municipality) and the air it typically has."""

    name: str
    code: str  # GB/T 2260 six-digit code; municipalities use the province-level code
    province: str
    latitude: float
    longitude: float
    region: str  # air-shed sharing weather and pollution episodes
    pm25: float  # typical recent annual mean, µg/m³ (national bulletins' order of magnitude)
    megacity: bool = False  # traffic adds NO2 and CO


# Northern regions burn coal for winter heating and sit under winter inversions.
NORTHERN_REGIONS = frozenset(
    {"north_china_plain", "fenwei", "shandong", "northeast", "northwest", "central_plain"}
)
# Spring sand and dust reach these regions from the Gobi and the Taklimakan.
DUSTY_REGIONS = frozenset({"northwest", "north_china_plain", "fenwei", "central_plain"})

# The air each city of GB/T 2260 (standards.divisions) typically has:
# code -> (air-shed region, typical annual PM2.5 in µg/m³, megacity)
_AIR: dict[str, tuple[str, float] | tuple[str, float, bool]] = {
    # North China Plain (Jing-Jin-Ji)
    "110000": ("north_china_plain", 30.5, True),  # Beijing
    "120000": ("north_china_plain", 37.0, True),  # Tianjin
    "130100": ("north_china_plain", 44.0),  # Shijiazhuang
    "130200": ("north_china_plain", 40.0),  # Tangshan
    "130400": ("north_china_plain", 46.0),  # Handan
    "130600": ("north_china_plain", 42.0),  # Baoding
    # Fen-Wei plain
    "140100": ("fenwei", 41.0),  # Taiyuan
    "610100": ("fenwei", 44.0, True),  # Xi'an
    # Central plain and Shandong
    "410100": ("central_plain", 44.0, True),  # Zhengzhou
    "320300": ("central_plain", 40.0),  # Xuzhou
    "370100": ("shandong", 38.0),  # Jinan
    "370200": ("shandong", 25.0),  # Qingdao
    # Northeast
    "210100": ("northeast", 36.0),  # Shenyang
    "210200": ("northeast", 26.0),  # Dalian
    "220100": ("northeast", 31.0),  # Changchun
    "230100": ("northeast", 35.0),  # Harbin
    # Northwest
    "150100": ("northwest", 28.0),  # Hohhot
    "620100": ("northwest", 32.0),  # Lanzhou
    "630100": ("northwest", 29.0),  # Xining
    "640100": ("northwest", 30.0),  # Yinchuan
    "650100": ("northwest", 38.0),  # Urumqi
    # Tibetan plateau
    "540100": ("plateau", 10.0),  # Lhasa
    # Yangtze River Delta
    "310000": ("yangtze_delta", 27.0, True),  # Shanghai
    "320100": ("yangtze_delta", 28.0, True),  # Nanjing
    "320200": ("yangtze_delta", 29.0),  # Wuxi
    "320500": ("yangtze_delta", 28.0),  # Suzhou
    "330100": ("yangtze_delta", 28.0, True),  # Hangzhou
    "330200": ("yangtze_delta", 23.0),  # Ningbo
    "340100": ("yangtze_delta", 33.0),  # Hefei
    # Middle Yangtze
    "420100": ("middle_yangtze", 35.0, True),  # Wuhan
    "430100": ("middle_yangtze", 37.0),  # Changsha
    "360100": ("middle_yangtze", 30.0),  # Nanchang
    # Sichuan basin
    "510100": ("sichuan_basin", 37.0, True),  # Chengdu
    "500000": ("sichuan_basin", 34.0, True),  # Chongqing
    # Southeast coast
    "350100": ("southeast_coast", 20.0),  # Fuzhou
    "350200": ("southeast_coast", 18.0),  # Xiamen
    # Pearl River Delta
    "440100": ("pearl_delta", 23.0, True),  # Guangzhou
    "440300": ("pearl_delta", 17.0, True),  # Shenzhen
    # Southwest
    "450100": ("southwest", 27.0),  # Nanning
    "520100": ("southwest", 23.0),  # Guiyang
    "530100": ("southwest", 22.0),  # Kunming
    # Hainan
    "460100": ("hainan", 13.0),  # Haikou
}
CITIES: tuple[City, ...] = tuple(
    City(d.name, d.code, d.province, d.latitude, d.longitude, *_AIR[d.code])
    for d in PREFECTURES
    if d.code in _AIR
)
CITY_BY_CODE = {city.code: city for city in CITIES}


@dataclass(frozen=True, slots=True)
class Section:
    """A national surface-water assessment section and the water it typically has."""

    name: str
    waterbody_code: str  # id part: W-{waterbody_code}-001
    basin: str
    waterbody: str  # "river" | "lake"
    city: str
    city_code: str
    province: str
    latitude: float
    longitude: float
    quality: float  # typical class index of its worst item: (1, 2] = Class II, (2, 3] = III, …


# Weights of the waterbodies when a network takes its first M sections: roughly their share
# of the national sections, so a small network looks like a small sample of the real one.
WATERBODY_WEIGHTS = {
    "YANGTZE": 12,
    "YELLOW": 6,
    "PEARL": 5,
    "HUAI": 5,
    "HAI": 4,
    "SONGHUA": 4,
    "LIAO": 3,
    "TAIHU": 1,
    "CHAOHU": 1,
    "DIANCHI": 1,
}

_Y, _YR, _P, _H = "Yangtze", "Yellow River", "Pearl River", "Huai River"
_HA, _S, _L = "Hai River", "Songhua River", "Liao River"

# fmt: off
SECTIONS: tuple[Section, ...] = (
    # Yangtze: mostly Class II
    Section("Jinsha River at Panzhihua", "YANGTZE", _Y, "river", "Panzhihua", "510400",
            "Sichuan", 26.582, 101.718, 1.6),
    Section("Yangtze at Yibin", "YANGTZE", _Y, "river", "Yibin", "511500", "Sichuan",
            28.770, 104.640, 1.8),
    Section("Yangtze at Cuntan", "YANGTZE", _Y, "river", "Chongqing", "500000", "Chongqing",
            29.620, 106.600, 1.85),
    Section("Yangtze at Nanjinguan", "YANGTZE", _Y, "river", "Yichang", "420500", "Hubei",
            30.740, 111.280, 1.7),
    Section("Yangtze at Zongguan", "YANGTZE", _Y, "river", "Wuhan", "420100", "Hubei",
            30.620, 114.220, 1.9),
    Section("Yangtze at Jiujiang", "YANGTZE", _Y, "river", "Jiujiang", "360400", "Jiangxi",
            29.730, 116.000, 1.85),
    Section("Yangtze at Anqing", "YANGTZE", _Y, "river", "Anqing", "340800", "Anhui",
            30.530, 117.050, 1.8),
    Section("Yangtze at Linshan", "YANGTZE", _Y, "river", "Nanjing", "320100", "Jiangsu",
            32.100, 118.730, 1.9),
    Section("Yangtze at Xuliujing", "YANGTZE", _Y, "river", "Suzhou", "320500", "Jiangsu",
            31.760, 120.950, 2.0),
    Section("Han River at Xiangyang", "YANGTZE", _Y, "river", "Xiangyang", "420600", "Hubei",
            32.010, 112.120, 1.6),
    Section("Jialing River at Nanchong", "YANGTZE", _Y, "river", "Nanchong", "511300",
            "Sichuan", 30.840, 106.110, 1.75),
    Section("Xiang River at Changsha", "YANGTZE", _Y, "river", "Changsha", "430100", "Hunan",
            28.200, 112.970, 2.3),
    Section("Gan River at Nanchang", "YANGTZE", _Y, "river", "Nanchang", "360100", "Jiangxi",
            28.680, 115.890, 2.2),
    Section("Min River at Leshan", "YANGTZE", _Y, "river", "Leshan", "511100", "Sichuan",
            29.550, 103.770, 2.4),
    # Yellow River: Class II-III, the Fen a tributary that long was worse
    Section("Yellow River at Xincheng Bridge", "YELLOW", _YR, "river", "Lanzhou", "620100",
            "Gansu", 36.080, 103.620, 1.7),
    Section("Yellow River at Yinchuan", "YELLOW", _YR, "river", "Yinchuan", "640100",
            "Ningxia", 38.450, 106.400, 2.0),
    Section("Yellow River at Baotou", "YELLOW", _YR, "river", "Baotou", "150200",
            "Inner Mongolia", 40.550, 109.950, 2.4),
    Section("Yellow River at Sanmenxia", "YELLOW", _YR, "river", "Sanmenxia", "411200",
            "Henan", 34.780, 111.200, 2.1),
    Section("Yellow River at Huayuankou", "YELLOW", _YR, "river", "Zhengzhou", "410100",
            "Henan", 34.910, 113.650, 2.2),
    Section("Yellow River at Luokou", "YELLOW", _YR, "river", "Jinan", "370100", "Shandong",
            36.730, 117.000, 2.3),
    Section("Yellow River at Lijin", "YELLOW", _YR, "river", "Dongying", "370500", "Shandong",
            37.520, 118.300, 2.3),
    Section("Fen River at Taiyuan", "YELLOW", _YR, "river", "Taiyuan", "140100", "Shanxi",
            37.800, 112.550, 3.3),
    Section("Wei River at Xi'an", "YELLOW", _YR, "river", "Xi'an", "610100", "Shaanxi",
            34.420, 108.950, 2.7),
    # Pearl River: Class II, the delta III
    Section("Pearl River at Guangzhou", "PEARL", _P, "river", "Guangzhou", "440100",
            "Guangdong", 23.120, 113.300, 2.6),
    Section("Xi River at Wuzhou", "PEARL", _P, "river", "Wuzhou", "450400", "Guangxi",
            23.480, 111.320, 1.6),
    Section("Yong River at Nanning", "PEARL", _P, "river", "Nanning", "450100", "Guangxi",
            22.810, 108.350, 2.0),
    Section("Xi River at Zhaoqing", "PEARL", _P, "river", "Zhaoqing", "441200", "Guangdong",
            23.050, 112.470, 1.7),
    Section("Dong River at Huizhou", "PEARL", _P, "river", "Huizhou", "441300", "Guangdong",
            23.110, 114.410, 1.8),
    Section("Bei River at Shaoguan", "PEARL", _P, "river", "Shaoguan", "440200", "Guangdong",
            24.810, 113.600, 1.8),
    Section("Liu River at Liuzhou", "PEARL", _P, "river", "Liuzhou", "450200", "Guangxi",
            24.330, 109.410, 1.7),
    # Huai River: Class III, tributaries worse
    Section("Huai River at Xinyang", "HUAI", _H, "river", "Xinyang", "411500", "Henan",
            32.130, 114.070, 2.2),
    Section("Huai River at Bengbu", "HUAI", _H, "river", "Bengbu", "340300", "Anhui",
            32.940, 117.390, 2.6),
    Section("Huai River at Huai'an", "HUAI", _H, "river", "Huai'an", "320800", "Jiangsu",
            33.550, 119.030, 2.5),
    Section("Ying River at Fuyang", "HUAI", _H, "river", "Fuyang", "341200", "Anhui",
            32.890, 115.810, 3.2),
    Section("Grand Canal at Xuzhou", "HUAI", _H, "river", "Xuzhou", "320300", "Jiangsu",
            34.270, 117.200, 2.7),
    Section("Yi River at Linyi", "HUAI", _H, "river", "Linyi", "371300", "Shandong",
            35.100, 118.360, 2.5),
    # Hai River: the most polluted basin
    Section("Hai River at Tianjin", "HAI", _HA, "river", "Tianjin", "120000", "Tianjin",
            39.130, 117.200, 3.2),
    Section("Yongding River at Lugou Bridge", "HAI", _HA, "river", "Beijing", "110000",
            "Beijing", 39.850, 116.210, 2.4),
    Section("Hutuo River at Shijiazhuang", "HAI", _HA, "river", "Shijiazhuang", "130100",
            "Hebei", 38.120, 114.500, 2.8),
    Section("Luan River at Tangshan", "HAI", _HA, "river", "Tangshan", "130200", "Hebei",
            39.900, 118.600, 2.0),
    Section("Fuyang River at Handan", "HAI", _HA, "river", "Handan", "130400", "Hebei",
            36.600, 114.500, 3.3),
    Section("Daqing River at Baoding", "HAI", _HA, "river", "Baoding", "130600", "Hebei",
            38.870, 115.500, 2.9),
    # Songhua River: Class III, winter ammonia
    Section("Songhua River at Harbin", "SONGHUA", _S, "river", "Harbin", "230100",
            "Heilongjiang", 45.780, 126.620, 2.6),
    Section("Songhua River at Jilin", "SONGHUA", _S, "river", "Jilin", "220200", "Jilin",
            43.840, 126.550, 2.1),
    Section("Songhua River at Jiamusi", "SONGHUA", _S, "river", "Jiamusi", "230800",
            "Heilongjiang", 46.800, 130.360, 2.7),
    Section("Nen River at Qiqihar", "SONGHUA", _S, "river", "Qiqihar", "230200",
            "Heilongjiang", 47.350, 123.920, 2.5),
    Section("Yitong River at Changchun", "SONGHUA", _S, "river", "Changchun", "220100",
            "Jilin", 43.900, 125.330, 3.3),
    # Liao River
    Section("Hun River at Shenyang", "LIAO", _L, "river", "Shenyang", "210100", "Liaoning",
            41.780, 123.400, 2.8),
    Section("Liao River at Tieling", "LIAO", _L, "river", "Tieling", "211200", "Liaoning",
            42.290, 123.840, 2.9),
    Section("Liao River at Panjin", "LIAO", _L, "river", "Panjin", "211100", "Liaoning",
            41.120, 122.070, 3.2),
    Section("Taizi River at Anshan", "LIAO", _L, "river", "Anshan", "210300", "Liaoning",
            41.100, 122.990, 2.6),
    # The three lakes: phosphorus keeps them at Class IV-V (lake limits are strict)
    Section("Taihu, Gonghu Bay", "TAIHU", "Taihu", "lake", "Wuxi", "320200", "Jiangsu",
            31.420, 120.330, 3.5),
    Section("Taihu, East Taihu", "TAIHU", "Taihu", "lake", "Suzhou", "320500", "Jiangsu",
            31.100, 120.450, 3.0),
    Section("Taihu, South Shore", "TAIHU", "Taihu", "lake", "Huzhou", "330500", "Zhejiang",
            31.000, 120.120, 3.4),
    Section("Taihu, Meiliang Bay", "TAIHU", "Taihu", "lake", "Wuxi", "320200", "Jiangsu",
            31.500, 120.200, 3.8),
    Section("Chaohu, West Lake", "CHAOHU", "Chaohu", "lake", "Hefei", "340100", "Anhui",
            31.620, 117.350, 4.0),
    Section("Chaohu, East Lake", "CHAOHU", "Chaohu", "lake", "Hefei", "340100", "Anhui",
            31.580, 117.750, 3.5),
    Section("Chaohu, Lake Centre", "CHAOHU", "Chaohu", "lake", "Hefei", "340100", "Anhui",
            31.580, 117.550, 3.7),
    Section("Dianchi, Waihai", "DIANCHI", "Dianchi", "lake", "Kunming", "530100", "Yunnan",
            24.850, 102.720, 4.2),
    Section("Dianchi, Caohai", "DIANCHI", "Dianchi", "lake", "Kunming", "530100", "Yunnan",
            25.000, 102.650, 4.6),
    Section("Dianchi, South Lake", "DIANCHI", "Dianchi", "lake", "Kunming", "530100", "Yunnan",
            24.780, 102.650, 4.3),
)
# fmt: on
SECTION_BY_NAME = {section.name: section for section in SECTIONS}
