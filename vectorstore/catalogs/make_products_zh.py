"""Writes products-zh.jsonl, recchat's demo shop catalog written in Chinese (prices in yuan), from the product
types below.

Run `python vectorstore/catalogs/make_products_zh.py` after editing; a test checks the committed file matches.
Like make_products.py, each type is hand-written and variants differ in brand line, material, colour, audience
and price, so the facts stay consistent (a down jacket is always very warm, sandals never are). Attribute names
are Chinese too, so the reasons built from facts read as Chinese.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the shared walk over variants, and the JSONL writer

from make_products import render, variants  # noqa: E402

BRANDS = ["北风", "山脊", "峡湾", "港湾", "红隼", "远径", "枫林", "至日", "城蕨", "花岗峰", "潮汐", "余烬"]
LINES = ["巅峰", "经典", "都市", "步道", "海岸", "日常", "高山", "传承", "漂流", "北欧"]

# (type, category, audiences, (min, max) yuan, materials, colours, season, warmth, waterproof, variants,
#  what it is, details to pick from)
TYPES = [
    ("羽绒服", "外套", ["女款", "男款"], (900, 2600), ["白鹅绒", "白鸭绒"], ["黑色", "藏青色", "军绿色", "酒红色"],
     "冬季", "很暖和", True, 5, "{material}填充的中长款羽绒服，适合寒冬。",
     ["可抵御零下二十度左右的严寒。", "防风门襟配双向拉链。", "防泼水面料，不怕小雪小雨。"]),
    ("羊毛大衣", "外套", ["女款", "男款"], (800, 2200), ["羊毛羊绒混纺", "意大利羊毛"], ["驼色", "炭灰色", "黑色"],
     "冬季", "暖和", False, 4, "{material}及膝长大衣，剪裁利落，通勤正装都合适。",
     ["全里衬，平驳领。", "可以套在西装或毛衣外面。"]),
    ("冲锋衣", "外套", ["女款", "男款"], (500, 1500), ["三层复合尼龙", "再生涤纶防水膜"],
     ["黄色", "藏青色", "黑色", "蓝绿色"],
     "春秋", "轻薄", True, 4, "{material}防水透气冲锋衣，压胶接缝，适合下雨天和户外徒步。",
     ["可调节帽檐。", "腋下拉链透气。", "可收纳成水壶大小。"]),
    ("风衣", "外套", ["女款", "男款"], (600, 1800), ["棉质华达呢", "防泼水斜纹棉"], ["米色", "黑色", "藏青色"],
     "春秋", "轻薄", False, 3, "{material}双排扣风衣，系腰带，经典款式。", ["可拆卸内胆，天凉时更保暖。"]),
    ("抓绒外套", "外套", ["女款", "男款", "童款"], (200, 600), ["再生涤纶抓绒", "摇粒绒"], ["灰色", "藏青色", "米白色"],
     "四季", "适中", False, 4, "{material}全拉链外套，柔软速干。",
     ["可作冲锋衣里的中间层。", "立领设计，胸前拉链口袋。"]),
    ("牛仔夹克", "外套", ["女款", "男款"], (300, 800), ["纯棉牛仔布", "有机棉牛仔布"], ["浅蓝色", "深蓝色", "黑色"],
     "春秋", "轻薄", False, 3, "{material}经典工装款牛仔夹克，越穿越软。", ["胸前翻盖口袋。"]),
    ("羊绒毛衣", "毛衣", ["女款", "男款"], (700, 1800), ["内蒙古羊绒"], ["驼色", "灰色", "黑色", "象牙白"],
     "冬季", "很暖和", False, 4, "{material}V领毛衣，轻软保暖。", ["罗纹袖口不易变形。", "附赠雪松收纳袋。"]),
    ("美利奴羊毛衫", "毛衣", ["女款", "男款"], (400, 900), ["超细美利奴羊毛"], ["燕麦色", "藏青色", "炭灰色"],
     "冬季", "暖和", False, 4, "{material}圆领针织衫，保暖透气不扎人。", ["天然抑味，不用常洗。"]),
    ("连帽卫衣", "毛衣", ["女款", "男款", "童款"], (150, 450), ["纯棉毛圈布", "加绒棉"], ["麻灰色", "黑色", "鼠尾草绿"],
     "四季", "适中", False, 4, "{material}套头连帽卫衣，帽子带里衬。", ["袋鼠口袋，罗纹袖口。"]),
    ("纯棉T恤", "上衣", ["女款", "男款", "童款"], (60, 200), ["有机棉", "棉麻混纺"],
     ["白色", "黑色", "藏青色", "珊瑚色"],
     "夏季", "轻薄", False, 4, "{material}圆领短袖T恤，宽松舒适。", ["夏天穿透气凉快。", "多次洗涤不变形。"]),
    ("亚麻衬衫", "上衣", ["女款", "男款"], (250, 600), ["欧洲亚麻"], ["白色", "天蓝色", "沙色"],
     "夏季", "轻薄", False, 3, "{material}衬衫，夏天穿清爽透气。", ["越洗越柔软。"]),
    ("法兰绒衬衫", "上衣", ["女款", "男款"], (200, 500), ["磨毛棉法兰绒"], ["红格子", "绿格子", "灰格子"],
     "冬季", "适中", False, 3, "厚实的{material}衬衫，适合寒冷的早晨。", ["双面磨毛，手感柔软。"]),
    ("修身牛仔裤", "裤子", ["女款", "男款"], (250, 700), ["弹力棉牛仔布", "原色赤耳牛仔布"], ["靛蓝色", "黑色", "灰色"],
     "四季", "适中", False, 4, "{material}修身五袋牛仔裤。", ["中腰小锥腿。", "受力处铆钉加固。"]),
    ("徒步裤", "裤子", ["女款", "男款"], (300, 800), ["弹力防撕裂尼龙"], ["卡其色", "灰色", "黑色"],
     "四季", "轻薄", False, 4, "{material}速干徒步裤，防晒指数UPF50。", ["裤腿可拆成短裤。", "立体膝盖剪裁。"]),
    ("连衣裙", "连衣裙", ["女款"], (250, 800), ["棉质巴厘纱", "真丝", "亚麻"], ["碎花", "白色", "黄色", "天蓝色"],
     "夏季", "轻薄", False, 4, "{material}中长款吊带连衣裙，夏天穿很凉快。", ["肩带可调节。", "裙身带口袋。"]),
    ("针织连衣裙", "连衣裙", ["女款"], (400, 1000), ["美利奴羊毛", "罗纹棉针织"], ["黑色", "驼色", "酒红色"],
     "冬季", "暖和", False, 3, "{material}长袖针织连衣裙，配靴子和打底裤很舒服。", ["长度过膝。"]),
    ("雪地靴", "鞋", ["女款", "男款", "童款"], (400, 1300), ["防水皮革配羊毛内衬", "尼龙配保暖棉"],
     ["黑色", "棕色", "卡其色"],
     "冬季", "很暖和", True, 4, "{material}保暖雪地靴，可抵御零下三十度。",
     ["防滑橡胶大底，冰面也稳。", "内胆可拆，一晚就干。"]),
    ("登山鞋", "鞋", ["女款", "男款"], (600, 1500), ["磨砂皮配防水膜", "合成网布"], ["棕色", "灰色", "军绿色"],
     "四季", "适中", True, 4, "{material}中帮登山鞋，护踝，适合崎岖山路。",
     ["Vibram大底。", "缓震中底，走一整天也舒服。"]),
    ("跑鞋", "鞋", ["女款", "男款"], (400, 1200), ["工程网布"], ["白色", "黑色", "荧光绿", "蓝色"],
     "四季", "轻薄", False, 4, "{material}鞋面的中性公路跑鞋，回弹泡棉中底。",
     ["8毫米跟掌差。", "反光细节，适合夜跑。"]),
    ("帆布鞋", "鞋", ["女款", "男款", "童款"], (150, 450), ["纯棉帆布"], ["白色", "黑色", "红色"],
     "夏季", "轻薄", False, 3, "{material}低帮休闲鞋，硫化橡胶底。", ["软垫鞋垫。", "可以机洗。"]),
    ("凉鞋", "鞋", ["女款", "男款", "童款"], (150, 600), ["皮革鞋带配软木鞋床", "再生织带"], ["棕褐色", "黑色", "白色"],
     "夏季", "轻薄", False, 3, "{material}露趾凉鞋，贴合脚型。", ["搭扣可调节。", "可以沾水。"]),
    ("雨靴", "鞋", ["女款", "男款", "童款"], (200, 600), ["天然橡胶"], ["黄色", "绿色", "黑色"],
     "春秋", "轻薄", True, 3, "{material}高筒雨靴，完全防水，不怕水坑和泥地。", ["后跟提拉带。"]),
    ("围巾", "配饰", ["中性"], (150, 800), ["美利奴羊毛", "羊绒", "羊驼毛"], ["灰色", "驼色", "红色", "藏青色"],
     "冬季", "暖和", False, 4, "{material}长围巾，贴肤柔软。", ["流苏边。", "长一米九。"]),
    ("毛线帽", "配饰", ["中性", "童款"], (100, 350), ["美利奴羊毛", "再生腈纶"], ["黑色", "芥末黄", "灰色"],
     "冬季", "暖和", False, 3, "{material}罗纹毛线帽，可翻边。", ["均码。"]),
    ("触屏手套", "配饰", ["中性"], (120, 400), ["羊毛配导电指尖", "抓绒"], ["黑色", "灰色"],
     "冬季", "暖和", False, 3, "{material}手套，不摘手套也能用手机。", ["掌心硅胶防滑。"]),
    ("太阳镜", "配饰", ["中性"], (300, 1200), ["板材镜框配偏光镜片", "钛金属镜框"], ["玳瑁色", "黑色", "金色"],
     "夏季", None, False, 3, "{material}太阳镜，全面防紫外线UV400。", ["附硬壳眼镜盒。"]),
    ("折叠伞", "配饰", ["中性"], (100, 400), ["抗风玻璃纤维伞骨"], ["黑色", "藏青色", "黄色"],
     "春秋", None, True, 3, "{material}折叠伞，遇到大风会弯而不断。", ["自动开合。"]),
    ("双人帐篷", "户外装备", ["中性"], (900, 3000), ["防撕裂尼龙"], ["绿色", "橙色", "灰色"],
     "春秋", None, True, 4, "{material}自立式双人帐篷，五分钟搭好。",
     ["包装重量约1.6公斤。", "双门双前厅。", "三季帐。"]),
    ("睡袋", "户外装备", ["中性"], (500, 2500), ["鸭绒", "合成棉"], ["蓝色", "红色", "绿色"],
     "冬季", "很暖和", False, 3, "{material}木乃伊睡袋，舒适温度零下七度。", ["防风领和帽兜。", "附压缩袋。"]),
    ("登山包", "户外装备", ["中性"], (300, 1000), ["再生尼龙", "蜡染帆布"], ["黑色", "橙色", "蓝色"],
     "四季", None, False, 4, "{material}25升双肩登山包，带电脑隔层。", ["水袋仓和侧边水壶袋。", "背板透气。"]),
    ("头灯", "户外装备", ["中性"], (150, 500), ["USB-C充电"], ["黑色", "橙色"],
     "四季", None, True, 3, "{material}头灯，400流明，带红光夜视模式。", ["IPX4防泼溅。", "低档可用40小时。"]),
    ("保温杯", "户外装备", ["中性"], (100, 300), ["双层不锈钢"], ["黑色", "白色", "粉色"],
     "四季", None, False, 3, "750毫升{material}保温杯，保冷24小时、保温12小时。", ["杯盖防漏。"]),
    ("泳衣", "运动服", ["女款", "童款"], (200, 600), ["耐氯再生尼龙"], ["黑色", "红色", "印花"],
     "夏季", None, False, 3, "{material}连体泳衣，防晒UPF50+。", ["胸垫可拆。"]),
    ("瑜伽裤", "运动服", ["女款"], (250, 700), ["亲肤尼龙氨纶"], ["黑色", "梅子色", "藏青色"],
     "四季", "轻薄", False, 3, "{material}高腰瑜伽裤，深蹲不透，吸湿排汗。", ["腰头隐藏口袋。"]),
]


def series_title(brand: str, line: str, kind: str) -> str:
    """"北风" + "巅峰" + "羽绒服" -> 北风巅峰系列羽绒服, as Chinese shops name a product line."""
    return f"{brand}{line}系列{kind}"


def build_items() -> list[dict]:
    rng = random.Random(20261203)
    items = []
    for variant, title, row in variants(TYPES, BRANDS, LINES, rng, series_title):
        (kind, category, audiences, (low, high), materials, colours, season, warmth, waterproof, _, what,
         details) = row
        material = materials[variant % len(materials)]
        colour = colours[variant % len(colours)]
        audience = audiences[variant % len(audiences)]
        price = float(round(rng.uniform(low, high) / 10) * 10 - (1 if variant % 2 else 0))
        picked = rng.sample(details, k=min(2, len(details)))
        description = "".join([what.format(material=material), *picked, f"{audience}，{colour}。"])
        attributes: dict = {"材质": material, "颜色": colour, "季节": season, "适合": audience}
        if warmth:
            attributes["保暖"] = warmth
        if waterproof:
            attributes["防水"] = "是"
        items.append({
            "id": f"Z{len(items) + 1:04d}",
            "title": title,
            "description": description,
            "category": category,
            "price": price,
            "currency": "CNY",
            "attributes": attributes,
        })
    return items


if __name__ == "__main__":
    out = Path(__file__).with_name("products-zh.jsonl")
    items = build_items()
    out.write_text(render(items), encoding="utf-8")
    print(f"wrote {len(items)} items to {out}")
