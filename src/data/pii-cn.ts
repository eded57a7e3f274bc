/**
 * Context-bound PII detectors for customer-service text (used by createPiiDetector in src/data/pii.ts):
 *  - `cn_landline`: mainland landlines with an area code — `0551-62813075`, `(010) 6552 9988`, `（021）5432-1098`,
 *    `010 8500 7938`, unspaced `01065139661` — and optional extensions (`转 806`, `-806`, `ext. 806`); 7–8 digit local
 *    numbers without an area code only right after a phone word (电话/座机/固话/tel/phone);
 *  - `qq`: 5–11 digits (no leading 0) right after QQ/qq/扣扣 (optionally 号/号码, 是/为/:);
 *  - `cn_address`: [省|自治区][市][区|县|镇] + road (路/街/大街/大道/巷/胡同/弄) + house number 号, then optional
 *    building/unit/room (号楼/栋/幢/座, 单元, 室); the road form needs a 号 number, or a 市/区 prefix before it, so
 *    bare road names ("南京路很热闹") are not addresses;
 *  - `person_name`: a Chinese name (a common surname + 1–2 characters, or a compound surname + 1–2) after a field
 *    label (姓名/联系人/收件人/收货人/寄件人/户名/持卡人) or 我叫/本人; an English name (1–3 capitalised words) after
 *    "my name is", "name:", "contact:", "attn:", "this is" (capitalised words only, so "this is great" is not one).
 * Names in free text without such a cue are not detected: that needs a tagger, and regexes over every two Han
 * characters would mask half of any dialogue.
 */
import type { Detector } from './pii-scan.ts';

// Characters a place-name prefix may not start with: the verbs and pronouns that precede addresses in speech.
const PLACE = '(?:(?![是在的到于址去住我你他她它和与从往送寄发收来就请为])[\\u4e00-\\u9fa5])';
const HOUSE_NO = '[0-9０-９]+(?:[-－][0-9]+)?号?';
const BUILDING = `(?:[0-9A-Za-z一二三四五六七八九十]+(?:号楼|栋|幢|座|号院))?(?:[0-9一二三四五六七八九十]+单元)?(?:[0-9]+(?:室|层|楼))?`;
const ROAD = `${PLACE}{1,10}?(?:大街|大道|路|街|巷|胡同|弄)`;
const ADMIN = `(?:${PLACE}{2,7}?(?:省|自治区))?(?:${PLACE}{2,7}?市)?(?:${PLACE}{1,6}?(?:区|县|镇|乡))?`;

// 100 most common surnames cover ~85 % of the population (公安部 2020 姓氏报告); compound ones listed first.
const COMPOUND = '欧阳|司马|诸葛|上官|东方|皇甫|慕容|司徒|令狐|夏侯|尉迟|长孙|宇文|公孙';
const SURNAMES =
  '王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤常温康施文牛樊葛邢安齐易乔伍庞颜倪庄聂章鲁岳翟殷詹申欧耿关兰焦俞左柳甘祝包宁尚符舒阮柯纪梅童凌毕单季裴霍涂成苗谷盛曲翁冉骆蓝路游辛靳管柴蒙鲍华喻祁蒲房滕屈饶解牟艾尤阳时穆农司卓古吉缪简车项连芦麦褚娄窦戚岑景党宫费卜冷晏席卫米柏宗瞿桂全佟应臧闵苟邬边卞姬师和仇栾隋商刁沙荣巫寇桑郎甄丛仲虞敖巩明佘池查麻苑迟邝';
const NAME_END = '(?=[^\\u4e00-\\u9fa5]|$|先生|女士|小姐|同学|老师|电话|手机|联系|地址|收|的|，)';
const ZH_NAME_CUE = '(?:(?:姓名|联系人|收件人|收货人|寄件人|户名|持卡人|开户人)\\s*[:：]?\\s*|(?:我叫|本人)\\s*)';
const EN_NAME_CUE =
  '(?:[Mm]y name is|[Nn]ame\\s*[:：]|[Cc]ontact\\s*[:：]|[Aa]ttn\\.?\\s*:?|[Tt]his is|[Ss]igned,?)\\s+';
const EN_WORD = "[A-Z][a-z]+(?:['-][A-Z]?[a-z]+)?";
// Capitalised words that follow "This is"/"Name:" but are not names.
const EN_NOT_NAME =
  /^(?:The|This|That|It|A|An|My|Your|Our|Not|Very|So|Just|Really|What|Why|How|Great|Good|Fine|Ok|Okay|Yes|No|Please|Thanks|Customer|Support|Service|Team)$/;

const PHONE_CUE = /(?:电话|座机|固话|联系方式|tel\.?|phone|fax|传真)\s*(?:号码?|是|为|number)?\s*[:：]?\s*$/i;
const ORDER_CUE =
  /(?:(?:订单|单号|运单|快递单|物流|流水|工单|发票|退款单|(?<![A-Za-z])(?:order|tracking|invoice|ticket|ref))\s*(?:号|编号|号码|id|no\.?|number|#)?\s*[:：#]?|#)\s*$/i;
const before = (text: string, i: number, n = 24): string => text.slice(Math.max(0, i - n), i);

const EXT = '(?:\\s*(?:转|分机|ext\\.?|x|-)\\s*[0-9]{2,5})?';
// 010 and 02x are 3-digit area codes with 8-digit numbers; other 0xxx codes take 7–8 digits.
const AREA = '(?:0(?:10|2[0-9])|0[3-9][0-9]{2})';
const LOCAL = '(?:[2-9][0-9]{6,7}|[2-9][0-9]{2,3}[- ][0-9]{4})';

const LANDLINE_PARTS = new RegExp(`^[(（]?(?<area>${AREA})[)）]?\\s*[- ]?(?<local>${LOCAL})`);

const QQ_CUE = /QQ|qq|Qq|扣扣/;
const ZH_NAME_CUE_RE = new RegExp(ZH_NAME_CUE);
const EN_NAME_CUE_RE = new RegExp(EN_NAME_CUE);

// Pre-filters (pii-scan.ts): each is implied by every match of its regex. Digit runs: LOCAL ends in 4+ digits in
// a row ([0-9]{4} or [2-9][0-9]{6,7}); the bare local number is 7+; a QQ number 5+ after its cue.
export const CONTEXT_DETECTORS: Detector[] = [
  {
    type: 'cn_landline',
    re: new RegExp(`(?<![0-9+])(?:[(（]${AREA}[)）]\\s*|${AREA}[- ]?)${LOCAL}${EXT}(?![0-9]|[- ][0-9])`, 'g'),
    accept: (m, text, i) => {
      if (ORDER_CUE.test(before(text, i))) return false;
      const g = LANDLINE_PARTS.exec(m)?.groups;
      if (!g) return false;
      const local = g.local!.replace(/[^0-9]/g, '').length;
      // 3-digit area codes (010, 02x) pair with 8-digit numbers; this keeps 010 + 7 digits (a typo, an ID) out.
      return g.area!.length === 3 ? local === 8 : local === 7 || local === 8;
    },
    may: (f) => f.digitRun >= 4,
  },
  {
    type: 'cn_landline',
    re: /(?<![0-9])[2-9][0-9]{6,7}(?![0-9])/g,
    accept: (_m, text, i) => PHONE_CUE.test(before(text, i, 16)),
    may: (f) => f.digitRun >= 7,
  },
  {
    type: 'qq',
    re: /(?<=(?:QQ|qq|Qq|扣扣)\s*(?:号码|号)?\s*(?:是|为|:|：)?\s*)[1-9][0-9]{4,10}(?![0-9])/g,
    accept: () => true,
    may: (f) => f.digitRun >= 5 && QQ_CUE.test(f.text),
  },
  {
    type: 'cn_address',
    re: new RegExp(`${ADMIN}${ROAD}(?:${HOUSE_NO}${BUILDING})?`, 'g'),
    accept: (m) => /号/.test(m) || /^[^路街巷弄]*(?:市|区|县|镇|乡)/.test(m),
    // Every match holds a road word (大街 大道 路 街 巷 胡同 弄); its last character is at most ADMIN (7 + 自治区,
    // 7 + 市, 6 + 区: 25) + ROAD's 10 place characters + 1 after the match start.
    anchor: { chars: /[街道路巷同弄]/, lead: 25 + 10 + 1 },
  },
  {
    type: 'person_name',
    re: new RegExp(`(?<=${ZH_NAME_CUE})(?:(?:${COMPOUND})|[${SURNAMES}])[\\u4e00-\\u9fa5]{1,2}?${NAME_END}`, 'g'),
    accept: () => true,
    may: (f) => ZH_NAME_CUE_RE.test(f.text),
  },
  {
    type: 'person_name',
    re: new RegExp(`(?<=${EN_NAME_CUE})${EN_WORD}(?: ${EN_WORD}){0,2}`, 'g'),
    accept: (m) => !EN_NOT_NAME.test(m.split(' ')[0]!),
    may: (f) => EN_NAME_CUE_RE.test(f.text),
  },
];
