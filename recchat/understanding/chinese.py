"""Chinese messages: price and exclusion patterns, the shopping glossary, and the language detector.

A Chinese request against an English-only encoder is read through the glossary as English keywords; against a
multilingual encoder (or the cross-lingual bridge) it is searched in its own words, and the glossary serves only its
constraints.
"""

from __future__ import annotations

import re

ZH_YUAN = r"(?:元|块钱?|美元|美金)?"
ZH_MAX = re.compile(
    rf"(?:低于|不超过|不要超过|别超过|不能超过|少于|以内|预算(?:是|在|有)?)\s*(\d+){ZH_YUAN}|(\d+)\s*{ZH_YUAN}\s*(?:以下|以内)"
)
ZH_MIN = re.compile(rf"(?:高于|(?<![不要别能])超过|至少)\s*(\d+){ZH_YUAN}|(\d+)\s*{ZH_YUAN}\s*以上")
# "100到200元", "100-200元之间", "价格在100和200之间": two amounts joined by 到/至/和/-, then 元 or 之间, which make
# them a price range (a bare "100-200" may be a size or a model number).
ZH_RANGE = re.compile(
    rf"(?:价格)?在?\s*(\d+)\s*{ZH_YUAN}\s*(?:到|至|和|与|-|~|—)\s*(\d+)\s*(?:(?:元|块钱?)\s*(?:之间)?|之间)"
)
ZH_EXCLUDE = re.compile(r"(?:不要|不想要|除了|别要?|不是)(?!超过|高于|低于|太贵)\s*((?:(?!的)[\u4e00-\u9fff]){1,4})")
LATIN_WORD = re.compile(  # a number followed by 元/以下... is read by ZH_MAX/ZH_MIN instead
    r"[A-Za-z$€£¥￥][A-Za-z0-9$€£¥￥.,'-]*"
    r"|(?<![\d.,])(?<!低于)(?<!少于)(?<!高于)(?<!超过)(?<!至少)(?<!到|至|和|与|-|~|—)\d[\d.,]*"
    r"(?![\d.,]|\s*(?:元|块|美元|美金|以下|以上|以内|到|至|和|与|-|~|—))"
)
YUAN_SIGN = re.compile(r"[¥￥]\s*(?=\d)")
ZH_FILLER = re.compile(
    r"我想(?:要|买|買)?|我要|请|帮我|给我|推荐|找|有没有|一件|一双|一个|一条|一顶|一点儿?|一些|一批|再|些|的|吗|呢|吧"
    r"|最好是?|还是|是给|给|是|买|要|就|可以|也|吧"
)

# Shopping words in English: the constraints a Chinese request sets (its category and the terms it excludes) are
# matched against an English catalog's facts, and an English-only encoder gets the request as these keywords.
ZH_GLOSSARY = {
    "羽绒服": "down parka", "冬季": "winter", "冬天": "winter", "夏季": "summer", "夏天": "summer", "春": "spring",
    "秋": "autumn", "外套": "coat jacket", "大衣": "overcoat", "夹克": "jacket", "雨衣": "rain jacket",
    "运动鞋": "sneakers", "跑鞋": "running shoes", "靴子": "boots", "雪地靴": "winter boots", "凉鞋": "sandals",
    "鞋": "shoes", "毛衣": "sweater", "开衫": "cardigan", "卫衣": "hoodie", "围巾": "scarf", "帽子": "beanie hat",
    "手套": "gloves", "连衣裙": "dress", "裙子": "dress", "牛仔裤": "jeans", "裤子": "trousers", "短裤": "shorts",
    "衬衫": "shirt", "T恤": "t-shirt", "帐篷": "tent", "睡袋": "sleeping bag", "背包": "backpack", "头灯": "headlamp",
    "水壶": "water bottle", "太阳镜": "sunglasses", "墨镜": "sunglasses", "雨伞": "umbrella", "袜子": "socks",
    "保暖": "warm", "暖和": "warm", "防水": "waterproof", "轻": "lightweight", "黑色": "black", "黑": "black",
    "白色": "white", "红色": "red", "蓝色": "blue", "绿色": "green", "灰色": "grey", "羊毛": "wool",
    "羊绒": "cashmere", "皮": "leather", "棉": "cotton", "亚麻": "linen", "女": "women", "男": "men",
    "儿童": "kids", "电影": "movie", "喜剧": "comedy", "恐怖": "horror", "动作": "action", "爱情": "romance",
    "科幻": "sci-fi", "动画": "animation", "纪录片": "documentary", "悬疑": "thriller", "战争": "war",
}
# The glossary the other way ("black" -> 黑色, its first Chinese word), so "not black" holds in a Chinese catalog.
ENGLISH_TO_ZH = {english: chinese for chinese, english in reversed(ZH_GLOSSARY.items())}

# Words that name a category, for catalogs whose category names are different words.
# The demo categories in Chinese, so an English request ("a winter coat") finds its category in a Chinese catalog.
ZH_CATEGORIES = {
    "外套": "coats & jackets", "毛衣": "sweaters", "上衣": "tops", "裤子": "trousers & jeans", "连衣裙": "dresses",
    "鞋": "shoes", "配饰": "accessories", "户外装备": "outdoor gear", "运动服": "activewear",
}


def is_cjk(character: str) -> bool:
    """Whether a character is a Chinese one (CJK unified ideograph); False for the empty string."""
    return "\u4e00" <= character <= "\u9fff"


def detect_language(text: str) -> str:
    letters = [char for char in text if char.isalpha()]
    if not letters:
        return "en"
    cjk = sum(1 for char in letters if is_cjk(char))
    if cjk / len(letters) > 0.2:  # mixed messages too ("我想要一件 winter coat"): the Chinese path keeps Latin words
        return "zh"
    ascii_letters = sum(1 for char in letters if char.isascii())
    return "en" if ascii_letters / len(letters) > 0.8 else "other"


def translate_zh(text: str) -> str:
    """Glossary words found in a Chinese text, in English, longest match first, in their places among the text's own
    Latin words and amounts ("我想要一件 winter coat 不要黑色 under $200" keeps "winter coat" and "under $200")."""
    found: list[tuple[int, str]] = [(match.start(), match.group()) for match in LATIN_WORD.finditer(text)]
    remaining = text
    for word in sorted(ZH_GLOSSARY, key=len, reverse=True):
        position = remaining.find(word)
        while position >= 0:
            found.append((position, ZH_GLOSSARY[word]))
            remaining = remaining[:position] + "\0" * len(word) + remaining[position + len(word) :]
            position = remaining.find(word)
    return " ".join(english for _, english in sorted(found))


def leading_word(chinese: str) -> str:
    """What "不要黑色羽绒服" excludes: the longest glossary word it starts with (黑色), else the whole capture, since
    Chinese runs words together and ZH_EXCLUDE takes up to four characters."""
    known = [word for word in ZH_GLOSSARY if chinese.startswith(word)]
    return max(known, key=len) if known else chinese


def without_exclusions(chinese: str) -> str:
    """The request without "不要" and what it excludes ("不要黑色羽绒服" keeps "羽绒服")."""
    return ZH_EXCLUDE.sub(lambda match: " " + match.group(1)[len(leading_word(match.group(1))) :], chinese)
