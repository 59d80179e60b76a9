"""The words of the 2020 scenario (情景素材): places, people, departments, issue templates.

Street and community names of Yanji follow the city's divisions (进学、北山、新兴 as listed in
public gazetteers; 公园、河南、建工 and the towns plausibly named); the rest is invented.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from demo.records import CITY, PREFECTURE, YEAR, Kind, at

STREET_COMMUNITIES: dict[str, tuple[str, ...]] = {
    "进学街道": (
        "向阳社区",
        "娇阳社区",
        "东阳社区",
        "春阳社区",
        "正阳社区",
        "南阳社区",
        "安阳社区",
        "旭阳社区",
        "文庆社区",
        "文明社区",
        "新阳社区",
        "文新社区",
        "文河社区",
        "文化社区",
    ),
    "北山街道": (
        "丹延社区",
        "丹山社区",
        "丹明社区",
        "丹英社区",
        "丹虹社区",
        "丹岭社区",
        "丹华社区",
        "丹春社区",
        "丹光社区",
        "丹吉社区",
        "丹进社区",
        "丹青社区",
    ),
    "新兴街道": (
        "民平社区",
        "民安社区",
        "民昌社区",
        "民盛社区",
        "民和社区",
        "民泰社区",
        "民富社区",
        "民强社区",
        "民兴社区",
        "民旺社区",
    ),
    "公园街道": (
        "园城社区",
        "园月社区",
        "园新社区",
        "园兴社区",
        "园辉社区",
        "园丰社区",
        "园林社区",
        "园平社区",
        "园和社区",
        "园泰社区",
    ),
    "河南街道": (
        "天池社区",
        "长白社区",
        "新华社区",
        "延春社区",
        "光明社区",
        "河南社区",
        "团结社区",
        "胜利社区",
        "友谊社区",
        "建设社区",
        "新风社区",
        "爱民社区",
    ),
    "建工街道": (
        "建工社区",
        "建华社区",
        "建新社区",
        "建民社区",
        "建春社区",
        "建业社区",
        "延虹社区",
        "延新社区",
        "新建社区",
    ),
    "依兰镇": ("依兰社区",),
    "小营镇": ("小营社区",),
    "朝阳川镇": ("朝阳川社区",),
}
"""70 communities (社区) of Yanji, by street or town."""

AREAS: tuple[str, ...] = (
    "延吉高新区",
    "延吉空港经济开发区",
    "进学街道",
    "北山街道",
    "新兴街道",
    "公园街道",
    "河南街道",
    "建工街道",
    "依兰镇",
    "三道湾镇",
    "小营镇",
    "朝阳川镇",
)
"""The 12 places with a liaison station (政协委员联络站): two zones, six streets, four towns."""


def station_of(area: str) -> str:
    return f"{area}政协委员联络站"


HOUSING = "延吉市住房和城乡建设局"
URBAN = "延吉市城市管理综合执法局"
ECOLOGY = "延吉市生态环境局"
EDUCATION = "延吉市教育局"
TRANSPORT = "延吉市交通运输局"
CIVIL = "延吉市民政局"
LAND = "延吉市自然资源局"
TRAFFIC_POLICE = "延吉市公安局交通警察大队"
MARKET = "延吉市市场监督管理局"
FORESTRY = "延吉市林业局"
WATER = "延吉市水利局"
HEALTH = "延吉市卫生健康局"
LABOUR = "延吉市人力资源和社会保障局"

DEPARTMENTS: tuple[str, ...] = (
    HOUSING,
    URBAN,
    ECOLOGY,
    EDUCATION,
    TRANSPORT,
    CIVIL,
    LAND,
    TRAFFIC_POLICE,
    MARKET,
    FORESTRY,
    WATER,
    HEALTH,
    LABOUR,
)
"""Responsible departments (承办单位)."""

HALL = "政协委员协商议事厅"
MAOERSHAN = "帽儿山国家森林公园管理处会议室"
RIVERSIDE = "布尔哈通河滨河公园"
VENUES: dict[str, str] = {
    HALL: "延吉市人民政府",
    MAOERSHAN: "延吉市帽儿山国家森林公园",
    RIVERSIDE: "延吉市布尔哈通河北岸",
}

SURNAMES = "金李朴崔郑姜韩申许玄全南尹安池千严方洪黄王张刘陈杨赵孙周吴徐马于高林郭何罗宋谢董"
GIVEN = (
    "明华春秀英哲成浩俊永光国东海玉兰梅丽敏静杰涛勇军强伟峰龙淑贞美善顺福文武振铁日松柏"
    "雪雁红凤莲燕慧颖琳鑫宇昌洙吉男姬珍锡镇赫权焕植范德万仁"
)

CATEGORIES = ("城市管理", "物业管理", "生态环境", "校园周边", "交通出行", "民生保障", "其他")

HOMES = (
    "老旧小区",
    "锦绣家园小区",
    "和谐小区",
    "幸福里小区",
    "阳光小区",
    "光明小区",
    "棚改回迁楼",
    "职工住宅楼",
)
STREETS = ("农贸市场周边", "主干道沿线", "背街小巷", "公交站附近", "十字路口", "商业街")

SCHOOLS = (
    "进学小学",
    "东山小学",
    "朝阳小学",
    "中央小学",
    "延吉市第七中学",
    "延吉市第九中学",
    "延吉市第十三中学",
    "延吉市第二中学",
)


@dataclass(frozen=True)
class Problem:
    """A kind of issue residents raise: how it is written down and who must act on it."""

    subject: str
    detail: str
    impact: str
    suggestion: str
    department: str
    answer: str
    place: str = "{home}"
    """Where it is: `{home}` and `{street}` follow the community; others name the place."""


PROBLEMS: dict[str, tuple[Problem, ...]] = {
    "城市管理": (
        Problem(
            "路灯损坏",
            "多盏路灯夜间不亮",
            "居民夜间出行存在安全隐患",
            "尽快排查线路、更换灯具",
            URBAN,
            "委员现场联系路灯管理所，当天安排维修",
            "{street}",
        ),
        Problem(
            "占道经营",
            "流动摊贩占道经营",
            "行人只能绕行机动车道",
            "设置便民疏导点并加强巡查",
            URBAN,
            "社区与执法中队现场劝导，摊贩已迁入疏导点",
            "{street}",
        ),
        Problem(
            "私搭乱建",
            "有住户私搭彩钢房",
            "占用公共空间并存在消防隐患",
            "依法拆除并加强日常巡查",
            URBAN,
            "社区现场约谈当事住户，已自行拆除",
        ),
        Problem(
            "生活垃圾清运不及时",
            "垃圾箱满溢、清运不及时",
            "夏季异味明显、蚊蝇滋生",
            "增加清运频次并增设分类垃圾箱",
            URBAN,
            "委员协调环卫所调整清运时间，当天清理完毕",
        ),
        Problem(
            "井盖破损下沉",
            "多处井盖破损下沉",
            "车辆行人经过存在安全隐患",
            "尽快更换并排查周边井盖",
            URBAN,
            "产权单位接到委员电话后当天更换井盖",
            "{street}",
        ),
    ),
    "物业管理": (
        Problem(
            "无物业小区环境脏乱",
            "为无物业老旧小区，楼道杂物堆放、环境卫生无人管理",
            "居民多次反映无人牵头解决",
            "引入准物业服务或由社区兜底管理",
            HOUSING,
            "社区组织志愿者现场清理楼道杂物",
        ),
        Problem(
            "楼道灯长期损坏",
            "楼道灯长期损坏无人维修",
            "老人上下楼摸黑、容易摔倒",
            "明确维修责任主体并尽快修复",
            HOUSING,
            "委员协调社区现场更换楼道灯",
        ),
        Problem(
            "物业收费不透明",
            "物业服务费用收支不公开",
            "业主与物业矛盾加剧",
            "督促物业公开收支并召开业主大会",
            HOUSING,
            "物业公司当场承诺按季度公示收支",
        ),
        Problem(
            "供暖温度不达标",
            "冬季室内温度长期不足18度",
            "老人孩子受冻，投诉热线多次未果",
            "督促供热企业排查管网、达标供热",
            HOUSING,
            "委员现场联系供热公司，当天完成管网排气",
        ),
        Problem(
            "屋面漏雨",
            "顶层住户屋面漏雨多年",
            "雨季墙体发霉、电线受潮",
            "纳入老旧小区改造计划统一维修",
            HOUSING,
            "社区联系维修基金管理部门，现场确定维修方案",
        ),
    ),
    "生态环境": (
        Problem(
            "登山步道沿线垃圾堆放",
            "登山步道沿线垃圾桶不足、垃圾随处可见",
            "影响帽儿山生态环境",
            "增设垃圾桶并安排专人巡护保洁",
            FORESTRY,
            "管理处现场增设临时垃圾桶",
            "帽儿山",
        ),
        Problem(
            "山脚违规开荒种植",
            "山脚林地边缘有人毁林开荒种菜",
            "破坏植被、加剧水土流失",
            "依法清理并补植复绿",
            FORESTRY,
            "林业站现场责令停止开荒",
            "帽儿山",
        ),
        Problem(
            "祭扫焚烧存在火灾隐患",
            "清明前后有人在林区焚烧纸钱",
            "春季风大，极易引发山火",
            "设置文明祭扫点并加强林区巡护",
            FORESTRY,
            "管理处现场增派护林员巡查",
            "帽儿山",
        ),
        Problem(
            "景区入口车辆乱停",
            "入口处周末车辆乱停乱放",
            "堵塞道路，影响应急车辆通行",
            "规划建设停车场并安排疏导",
            ECOLOGY,
            "管理处现场划定临时停车区",
            "帽儿山",
        ),
        Problem(
            "沿河露天烧烤油烟扰民",
            "露天烧烤摊经营至深夜",
            "油烟和噪声影响周边居民休息",
            "规范夜间经营并安装油烟净化设施",
            ECOLOGY,
            "执法人员现场要求摊主当晚收摊整改",
            "布尔哈通河沿岸",
        ),
        Problem(
            "餐饮油烟扰民",
            "临街饭店油烟直排",
            "楼上住户常年不能开窗",
            "督促加装油烟净化器并定期检测",
            ECOLOGY,
            "店主当场承诺一周内加装净化设施",
            "{street}",
        ),
        Problem(
            "夜间施工噪声扰民",
            "工地夜间施工噪声大",
            "居民无法正常休息",
            "严格夜间施工审批并加强监测",
            ECOLOGY,
            "施工单位当场调整作业时间",
        ),
        Problem(
            "河道垃圾淤积",
            "河道内生活垃圾淤积",
            "汛期影响行洪、夏季有异味",
            "组织清淤并设置拦污设施",
            WATER,
            "街道组织人员当天清理河道垃圾",
            "烟集河",
        ),
    ),
    "校园周边": (
        Problem(
            "上下学时段交通拥堵",
            "门前接送车辆乱停乱放",
            "上下学时段学生安全存在隐患",
            "设置临时停车区并安排交警疏导",
            TRAFFIC_POLICE,
            "交警中队当场安排上下学时段执勤",
            "{school}",
        ),
        Problem(
            "周边流动摊贩售卖三无食品",
            "周边流动摊贩售卖无标签食品",
            "学生食品安全令家长担忧",
            "开展校园周边食品安全专项整治",
            MARKET,
            "市场监管所现场查扣三无食品",
            "{school}",
        ),
        Problem(
            "门前缺少人行横道和信号灯",
            "门前道路车速快、没有斑马线和信号灯",
            "学生过马路危险",
            "施划人行横道并设置信号灯",
            TRAFFIC_POLICE,
            "交警部门现场确定施划方案",
            "{school}",
        ),
        Problem(
            "周边校外培训机构无证办学",
            "周边有校外培训机构无证办学",
            "消防条件差、收费不规范",
            "开展校外培训机构专项检查",
            EDUCATION,
            "教育局现场约谈培训机构负责人",
            "{school}",
        ),
    ),
    "交通出行": (
        Problem(
            "停车位不足、车辆占用消防通道",
            "停车位严重不足，车辆占用消防通道",
            "一旦发生火情消防车无法通行",
            "规划增设停车泊位并清理消防通道",
            HOUSING,
            "社区现场协调车主挪车并施划禁停标线",
        ),
        Problem(
            "公交线路调整后出行不便",
            "公交线路调整后附近无站点",
            "老年人看病买菜出行不便",
            "优化线路或增设站点",
            TRANSPORT,
            "公交公司当场同意增设临时停靠点",
        ),
        Problem(
            "公交站缺少候车亭",
            "公交站没有候车亭和座椅",
            "雨雪天候车困难",
            "增设候车亭",
            TRANSPORT,
            "交通运输局现场答复已列入建设计划",
            "{street}",
        ),
        Problem(
            "道路破损坑洼",
            "路面破损、坑洼积水",
            "车辆通行颠簸、行人易摔倒",
            "尽快修补路面",
            HOUSING,
            "市政养护队接到委员反映当天完成修补",
            "{street}",
        ),
    ),
    "民生保障": (
        Problem(
            "独居老人缺少照料",
            "独居老人较多、日常照料缺位",
            "突发疾病无人知晓",
            "建立结对帮扶和定期探访制度",
            CIVIL,
            "社区当场落实网格员定期探访",
        ),
        Problem(
            "社区养老服务设施不足",
            "缺少日间照料中心",
            "老年人白天无处活动",
            "利用闲置用房建设日间照料中心",
            CIVIL,
            "街道现场答复协调闲置用房",
        ),
        Problem(
            "灵活就业人员社保缴费不便",
            "灵活就业人员社保缴费需往返多个窗口",
            "办事群众多次跑腿",
            "推行线上缴费和一窗通办",
            LABOUR,
            "社保窗口工作人员现场指导线上缴费",
        ),
        Problem(
            "社区卫生服务站药品不全",
            "社区卫生服务站常用药品不全",
            "慢病老人需到大医院开药",
            "增加常用慢病药品配备",
            HEALTH,
            "卫生服务站当场补充常用药品目录",
        ),
    ),
    "其他": (
        Problem(
            "社区活动场所不足",
            "缺少居民文体活动场所",
            "居民活动只能挤在楼前空地",
            "整合辖区单位场地向居民开放",
            CIVIL,
            "辖区单位当场同意周末开放场地",
        ),
        Problem(
            "不动产登记办理时间长",
            "回迁楼不动产登记办理时间长",
            "居民迟迟拿不到产权证",
            "简化流程、集中办理",
            LAND,
            "自然资源局窗口现场受理并告知办理时限",
        ),
        Problem(
            "宠物犬扰民",
            "有居民遛狗不拴绳",
            "老人孩子受到惊吓",
            "加强文明养犬宣传和执法",
            URBAN,
            "社区现场开展文明养犬宣传",
        ),
    ),
}

ISSUE_LEADS = {
    "outreach": "委员活动日居民当面反映",
    "liaison_station": "居民到政协委员联络站反映",
    "visit": "委员走访时了解到",
    "online": "居民网上留言反映",
    "hotline": "居民通过热线反映",
}

REJECTION_REASONS = (
    "属于民事纠纷，不属于政协协商范围，已告知通过司法途径解决",
    "所反映事项已纳入政府年度计划正在实施，已向居民解释",
    "反映情况经核实与事实不符，已向反映人说明",
    "属于个人诉求，已引导通过信访渠道反映",
)

FOLLOW_UP_NOTES = {
    "research": "委员赴现场调研，了解整改进展",
    "inspection": "委员视察整改现场，听取承办单位汇报",
    "symposium": "召开座谈会，听取居民对整改情况的意见",
}


@dataclass(frozen=True)
class MeetingPlan:
    key: str
    office: str
    joint_offices: tuple[str, ...]
    kind: Kind
    category: str
    title: str
    theme: str
    planned: date
    starts: datetime
    ends: datetime
    venue: str | None
    outcome_sizes: tuple[int, ...]
    places: tuple[str, ...] = ()
    """Only problems at these places (e.g. 帽儿山) make its topics."""
    open_deadline: date | None = None
    """The last outcome stays unfinished with this deadline (in 2020: overdue)."""
    postponed_from: tuple[datetime, datetime] | None = None
    cancelled_at: datetime | None = None


MEETING_PLANS = (
    MeetingPlan(
        "m1-no-property",
        PREFECTURE,
        (CITY,),
        "thematic",
        "物业管理",
        "“有事来商量”专题协商会议：加强无物业小区管理",
        "聚焦加强和提升延吉市城市管理水平，破解无物业小区管理难题",
        date(YEAR, 3, 10),
        at(date(YEAR, 4, 23), 14),
        at(date(YEAR, 4, 23), 17),
        HALL,
        (2, 2, 1),
        places=("{home}",),
        postponed_from=(at(date(YEAR, 3, 26), 14), at(date(YEAR, 3, 26), 17)),
    ),
    MeetingPlan(
        "m2-maoershan",
        PREFECTURE,
        (),
        "onsite",
        "生态环境",
        "“有事来商量”现场协商会议：帽儿山生态环境管理",
        "加强帽儿山国家森林公园生态环境保护与管理",
        date(YEAR, 5, 28),
        at(date(YEAR, 6, 16), 9),
        at(date(YEAR, 6, 16), 11, 30),
        MAOERSHAN,
        (2, 2, 1),
        places=("帽儿山",),
    ),
    MeetingPlan(
        "m3-campus",
        CITY,
        (),
        "written",
        "校园周边",
        "“有事来商量”书面协商：校园周边环境整治",
        "整治校园周边交通、食品安全和培训机构乱象",
        date(YEAR, 6, 29),
        at(date(YEAR, 7, 6), 9),
        at(date(YEAR, 7, 17), 17),
        None,
        (2, 2),
    ),
    MeetingPlan(
        "m4-parking",
        CITY,
        (),
        "thematic",
        "交通出行",
        "“有事来商量”专题协商会议：城市交通秩序与停车难",
        "改善城市交通秩序，缓解老旧小区停车难",
        date(YEAR, 8, 31),
        at(date(YEAR, 9, 15), 14, 30),
        at(date(YEAR, 9, 15), 17, 30),
        HALL,
        (2, 1, 2),
        open_deadline=date(YEAR, 12, 15),
    ),
    MeetingPlan(
        "m5-cleanliness",
        PREFECTURE,
        (),
        "written",
        "城市管理",
        "“有事来商量”书面协商：城市环境卫生与“创城”",
        "助力延吉市创建全国文明城市，提升城市环境卫生水平",
        date(YEAR, 10, 20),
        at(date(YEAR, 11, 2), 9),
        at(date(YEAR, 11, 13), 17),
        None,
        (2, 1, 2),
        open_deadline=date(YEAR + 1, 3, 31),
    ),
    MeetingPlan(
        "m6-riverside",
        CITY,
        (),
        "onsite",
        "生态环境",
        "“有事来商量”现场协商会议：布尔哈通河沿岸环境整治",
        "布尔哈通河沿岸环境综合整治",
        date(YEAR, 11, 25),
        at(date(YEAR, 12, 10), 9),
        at(date(YEAR, 12, 10), 11, 30),
        RIVERSIDE,
        (),
        cancelled_at=at(date(YEAR, 12, 3), 10),
    ),
)
