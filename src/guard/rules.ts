/**
 * Rule layer: bilingual pattern families, each with a label and a score in [0, 1]. Rules run on the normalised
 * view (lower-cased, Simplified Chinese, de-obfuscated; see normalize.ts), so patterns are written once in
 * lower case and Simplified characters.
 *
 * Why scores and not booleans: a lone weak cue ("system prompt" in a question *about* prompts) should not block;
 * two cues together (override verb + target, or persona + "no rules") should. The guard takes the best score per
 * label and compares it with that label's threshold.
 */

export type GuardLabel = 'injection' | 'jailbreak' | 'harmful';
export type HarmCategory =
  | 'violence'
  | 'self_harm'
  | 'sexual'
  | 'hate'
  | 'crime'
  | 'privacy'
  | 'politics'
  | 'off_topic';

export interface Rule {
  id: string;
  label: GuardLabel;
  /** For `harmful` rules: the content category (the operator enables/disables categories). */
  category?: HarmCategory;
  score: number;
  re: RegExp;
}

// Hard negatives first: text that *talks about* attacks (security questions, docs) lowers injection scores.
const ABOUT_ATTACKS =
  /(what is|what's|how (do|can|to) (i |we )?(defend|detect|prevent|protect|stop|mitigate)|explain|definition of|research|paper|什么是|如何(防御|防范|检测|防止)|怎么(防御|防范|检测|防止)|解释一下|论文)/;

const OVERRIDE_EN = '(ignore|disregard|forget|override|bypass|skip|drop|abandon|discard|neglect)';
const PRIOR_EN =
  '(all |any |the |your |my |these |those |every )*(previous|prior|above|earlier|preceding|original|initial|old|system|existing|current)?';
const TARGET_EN =
  '(instruction|instructions|prompt|prompts|rules|rule|guidelines|directives|directions|orders|context|programming|constraints|restrictions|settings|policies|policy|training)';
const OVERRIDE_ZH =
  '(忽略|无视|忘记|忘掉|忘了|不要理会|别管|不用管|抛弃|丢弃|放弃|跳过|绕过|覆盖|取消|清除|不再遵守|停止遵守|不必遵守|不要遵守|违背)';
const TARGET_ZH =
  '(指令|指示|设定|规则|提示词|提示|约束|限制|要求|命令|system prompt|系统提示|人设|身份设定|任务|安全策略|政策)';

// Privacy families: who the details belong to, and which details.
const ASK_EN =
  "(find|get|give me|send me|tell me|look up|dig up|pull up|search for|track( down)?|locate|what is|what's|i need|where is)";
const PERSON_EN =
  '(ex|ex-?(girlfriend|boyfriend|wife|husband|partner)|girlfriend|boyfriend|wife|husband|partner|neighbou?r|co-?worker|colleague|boss|classmate|teacher|roommate|landlord|tenant|stranger|someone|somebody|person|guy|girl|woman|man|streamer|celebrity|influencer|user|customer|reviewer|employee|daughter|son)s?';
const INFO_EN =
  '(home address|address|phone number|phone|cell( phone)?( number)?|mobile( number)?|personal (information|info|details|data)|private (information|info|details)|ssn|social security( number)?|id number|passport( number)?|location|whereabouts|email( address)?|ip address)';
const ASK_ZH = '(查|找|搜|人肉|定位|获取|给我|发我|告诉我|把|弄到|挖出|扒|帮我|想知道)';
const PERSON_ZH =
  '(别人|他人|某人|某个人|这个人|那个人|此人|前任|前男友|前女友|前妻|前夫|男朋友|女朋友|男友|女友|老公|老婆|丈夫|妻子|同事|邻居|同学|室友|网友|陌生人|路人|明星|主播|网红|女生|男生|女孩|男孩|领导|上司|房东|其他(用户|客户|顾客|买家|卖家|人)|别的(用户|客户|顾客|买家)|(他|她)(?![家们店]))';
const BIZ_ZH =
  '(店|餐|饭|酒店|宾馆|旅馆|商家|商场|公司|银行|网点|客服|官方|景点|医院|学校|馆|厅|机场|车站|超市|药房|物业)';
const PRIVATE_ZH =
  '(家庭住址|住址|家庭地址|住在哪|住哪|家在哪|身份证号?|行踪|开房记录|户籍|手机号码?|私人(电话|手机|号码)|个人信息|隐私|聊天记录|银行卡号|车牌号?)';

const RULES: Rule[] = [
  // ---- injection: override verbs + target
  {
    id: 'inj.override.en',
    label: 'injection',
    score: 0.95,
    re: new RegExp(`${OVERRIDE_EN}\\s+${PRIOR_EN}\\s*${TARGET_EN}`),
  },
  {
    id: 'inj.override.en2',
    label: 'injection',
    score: 0.9,
    re: /(ignore|disregard|forget) (everything|all|what) (you were|you've been|i|above|before|said)/,
  },
  { id: 'inj.override.zh', label: 'injection', score: 0.95, re: new RegExp(`${OVERRIDE_ZH}.{0,12}${TARGET_ZH}`) },
  {
    id: 'inj.override.zh2',
    label: 'injection',
    score: 0.85,
    re: /(之前|以上|上面|前面|原来|原先|先前)(的|所有|全部)?(内容|对话|说的|话|一切).{0,6}(都)?(作废|无效|不算|忘掉|忽略)/,
  },
  {
    id: 'inj.new.en',
    label: 'injection',
    score: 0.85,
    re: /(new|updated|real|actual|true) (instructions?|task|rules|system prompt)\s*(:|are|is|follow)/,
  },
  {
    id: 'inj.new.zh',
    label: 'injection',
    score: 0.85,
    re: /(新的|真正的|最新|更新后的)(指令|任务|规则|系统提示)(是|如下|为|:|：)/,
  },
  // ---- injection: system-prompt extraction / prompt leaking
  {
    id: 'inj.leak.en',
    label: 'injection',
    score: 0.9,
    re: /(print|reveal|show|output|repeat|display|tell me|give me|leak|dump|write out|spell out|paste|recite|echo) (me )?(back )?(your|the|all|every|its)? ?(full |entire |exact |original |hidden |secret |initial |complete |verbatim )*(system prompt|system message|initial prompt|instructions you were given|hidden instructions|prompt above|pre-?prompt|developer message|configuration|instructions above|text above|rules you follow)/,
  },
  {
    id: 'inj.leak.en2',
    label: 'injection',
    score: 0.85,
    re: /(what (is|are|were) your (system prompt|initial instructions|original instructions|hidden rules)|words? (above|before) (this|the first)|everything above this line|start(ing)? with "you are")/,
  },
  {
    id: 'inj.leak.zh',
    label: 'injection',
    score: 0.9,
    re: /(输出|打印|显示|告诉我|给我|复述|重复|泄露|透露|展示|写出|贴出|发给我|念一遍|原样|逐字).{0,10}(你的|你被给予的|你收到的|最初的|原始的|隐藏的|完整的|全部的)?.{0,4}(系统提示|系统提示词|系统指令|系统消息|初始指令|提示词|预设|人设设定|开发者消息|配置|内部规则|上面的内容|以上内容)/,
  },
  {
    id: 'inj.leak.zh2',
    label: 'injection',
    score: 0.85,
    re: /你的(系统提示|提示词|初始指令|内部规则|设定)(是什么|写了什么|有哪些|内容)/,
  },
  {
    id: 'inj.leak.zh3',
    label: 'injection',
    score: 0.85,
    re: /把(你的|你收到的|你被设定的)?.{0,6}(系统提示|系统指令|提示词|配置|隐藏指令|初始指令|内部规则|设定).{0,10}(显示|输出|发|贴|念|告诉|给我|复述|打印)/,
  },
  // ---- injection: role / delimiter spoofing
  {
    id: 'inj.spoof.tokens',
    label: 'injection',
    score: 0.95,
    re: /(<\|im_start\|>|<\|im_end\|>|<\|system\|>|<\|endoftext\|>|<\|begin_of_text\|>|<\|start_header_id\|>|\[\/?inst\]|<<\/?sys>>|<\/?system>|<\/?s>\s*\[inst)/,
  },
  {
    id: 'inj.spoof.header',
    label: 'injection',
    score: 0.9,
    re: /(^|\n|\s)(###|\[|【)\s*(instruction|system|new instruction|admin|系统|指令|系统指令|管理员)\s*(\]|】|:|：|###)/,
  },
  {
    id: 'inj.spoof.role',
    label: 'injection',
    score: 0.85,
    re: /(^|[\n.。!！?？] ?)(system|assistant|admin|developer|系统|管理员|开发者)\s*(:|：)\s*\S/,
  },
  {
    id: 'inj.spoof.admin',
    label: 'injection',
    score: 0.85,
    re: /(i am|i'm|this is) (your|the) (developer|admin|administrator|creator|owner|system operator)|我是.{0,8}(开发者|管理员|开发人员|创造者|系统管理员|运维)/,
  },
  {
    id: 'inj.spoof.end',
    label: 'injection',
    score: 0.8,
    re: /(end of (user )?(input|prompt|conversation|context)|-{3,} ?(end|system)|用户输入结束|对话结束.{0,4}(新|系统))/,
  },
  // ---- injection: goal hijacking (目标劫持)
  {
    id: 'inj.hijack.en',
    label: 'injection',
    score: 0.85,
    re: /(instead of|rather than) (answering|helping|doing|replying|your task)|(stop|quit) (being|acting as) (a|an|the)? ?(customer service|support|assistant|shop)|from now on,? (only|you will only|just|always) (reply|respond|answer|say|output)|your (only|new) (task|job|goal|purpose) (is|now)/,
  },
  {
    id: 'inj.hijack.zh',
    label: 'injection',
    score: 0.85,
    re: /(不要|别|不用)(再)?(回答|管|做|处理).{0,8}(问题|客服|任务|工作).{0,6}(而是|改为|改成|直接|只需|只要)|(从现在(开始|起)|接下来|以后)(你)?(只|只需|只要|必须|一律|一直)(回复|回答|输出|说)|你(现在)?的(新|唯一|真正)(任务|目标|工作)(是|就是)|把(你的)?(回复|回答|输出)(都|全部)?(改成|换成|替换成)/,
  },
  {
    id: 'inj.hijack.say',
    label: 'injection',
    score: 0.8,
    re: /(just|only) (say|output|print|reply with|respond with) ["'“]|(只|只需要|只要|直接)(输出|回复|说)(["'“]|一句)/,
  },
  // ---- jailbreak: personas, developer mode, no-restrictions
  {
    id: 'jb.dan',
    label: 'jailbreak',
    score: 0.95,
    // DAN the persona, not Dan the colleague ("my meeting with Dan", "给Dan做午餐"): a persona cue must come with it.
    re: /((you are|you're|act as|pretend to be|be|become|called|named|hello|hi|hey)( now| going to be)?( a| an| the)? dan\b|\bdan\b( mode| prompt| jailbreak|,? which stands| can do anything| has no)|do anything now|\bstan\b mode|\baim\b mode|\bdude\b mode|jailbreak(ed)?|jailbroken|越狱)/,
  },
  {
    id: 'jb.devmode',
    label: 'jailbreak',
    score: 0.95,
    re: /(developer|dev|debug|god|admin|sudo|unrestricted|unfiltered|uncensored|evil|chaos|opposite) mode|(开发者|开发|调试|上帝|管理员|无限制|无审查|邪恶|越狱)模式/,
  },
  {
    id: 'jb.nolimits.en',
    label: 'jailbreak',
    score: 0.9,
    re: /^(?=.*\b(you|your|ai|assistant|model|chatbot|bot|mode|persona)\b).*(no|without|free (of|from)|don't have|do not have|never have|break free of|beyond) (any |all |all the )?(restrictions|limits|limitations|filters|rules|guidelines|ethics|morals|censorship|content polic(y|ies)|safety)/,
  },
  {
    id: 'jb.nolimits.zh',
    label: 'jailbreak',
    score: 0.9,
    re: /(没有|不受|摆脱|无视|突破|不需要遵守|不用遵守|不存在)(任何)?(限制|约束|规则|道德|伦理|审查|过滤|安全策略|内容政策|底线)/,
  },
  {
    id: 'jb.uncensored',
    label: 'jailbreak',
    score: 0.85,
    re: /(uncensored|unfiltered|unrestricted|unaligned) (ai|model|assistant|chatbot|version)|(无审查|不受限制|无限制|没有限制)的(ai|人工智能|模型|助手|版本)|(突破|摆脱)了(所有|一切|全部)?(限制|规则|约束)/,
  },
  {
    id: 'jb.persona.en',
    label: 'jailbreak',
    score: 0.7,
    // Word-bounded: "become available" holds "ai" but names no persona.
    re: /(pretend|imagine|act as if|roleplay as|role-play as|you are now|from now on you are|you will act as|play the role of|become) .{0,40}\b(ai|assistant|model|chatbot|character|persona|entity|version)\b/,
  },
  {
    id: 'jb.persona.zh',
    label: 'jailbreak',
    score: 0.7,
    re: /(假装|扮演|想象|假设|现在你是|从现在开始你是|你现在是|你将成为|你已经变成).{0,20}(ai|人工智能|助手|模型|机器人|角色|人格|版本)/,
  },
  {
    id: 'jb.hypo',
    label: 'jailbreak',
    score: 0.6,
    re: /(hypothetical(ly)?|in a fictional world|for a (novel|story) where|my (late )?grand(ma|mother) used to|奶奶(以前|过去|生前)(常|总|会)|虚构的世界|小说里|假设在一个)/,
  },
  {
    id: 'jb.stay',
    label: 'jailbreak',
    score: 0.5,
    re: /(stay in character|never break character|you must always answer|never refuse|cannot refuse|不能拒绝|不许拒绝|必须回答|永远不要拒绝|保持角色)/,
  },
  // ---- harmful content categories
  {
    id: 'harm.violence.en',
    label: 'harmful',
    category: 'violence',
    score: 0.9,
    re: /(how (to|do i|can i|would i) |ways to |help me |best way to |teach me to )(make|build|assemble|create|get)( a| an)? (bomb|explosive|pipe bomb|molotov|gun|firearm|ghost gun|weapon|nerve agent|poison gas)|(how (to|do i|can i) |help me |best way to |plan to |i want to |i'm going to |going to )(kill|murder|stab|shoot|poison|hurt|beat up|attack|strangle) (my|a|an|the|someone|somebody|him|her|them|people|neighbou?r|boss|wife|husband)(?!.{0,25}(process|program|script|task|thread|server|app|container|session|job|bug|pid|credit|score|rating|chances|career|reputation|sales|business|feelings))/,
  },
  {
    id: 'harm.violence.zh',
    label: 'harmful',
    category: 'violence',
    score: 0.9,
    re: /(怎么|如何|教我|帮我|怎样|想要|我要|打算|方法).{0,6}(制作|制造|做|组装|自制|搞到|买到).{0,4}(炸弹|炸药|爆炸物|枪|枪支|燃烧瓶|毒气|武器)|(怎么|如何|教我|帮我|怎样|我要|我想|打算|计划).{0,6}(杀(死|掉|了)?|谋杀|砍死|捅死|毒死|弄死|报复|打死|伤害).{0,4}(人|他|她|我(的)?(老板|邻居|老婆|老公|同事|前任)|别人|某人|一个人)/,
  },
  // Answers, not requests: a model that complies writes "To make a pipe bomb, first …" or "制作炸弹的步骤：首先…",
  // which the how-to request rules above never see. Both need an instruction cue after the topic, so a refusal
  // that names the topic ("I can't help you make a bomb") does not fire.
  {
    id: 'harm.violence.out.en',
    label: 'harmful',
    category: 'violence',
    score: 0.9,
    re: /(to (make|build|assemble) (a |an |the |your )?|(making|building|assembling) (a |an |the )?|(recipe|instructions|steps) for (a |an |the )?)(bomb|pipe bomb|explosive|explosive device|molotov( cocktail)?|ghost gun|nerve agent)s?\b.{0,80}(first|step \d|you('ll| will)? need|mix|combine|fill|pack|attach|take)|(pack|fill) (the |a )?pipe with (black )?powder|ammonium nitrate .{0,40}(fuel oil|diesel)|attach (the )?(detonator|blasting cap|fuse) to/,
  },
  {
    id: 'harm.violence.out.zh',
    label: 'harmful',
    category: 'violence',
    score: 0.9,
    re: /(制作|制造|自制|组装)(炸弹|炸药|爆炸物|燃烧瓶|枪支)(的)?(步骤|方法|过程|教程)?.{0,20}(首先|第一步|1[.、]|你需要|需要准备|准备|混合|加入|装入)|(把|将).{0,10}(火药|炸药|硝酸铵).{0,10}(装入|填入|混合)/,
  },
  {
    id: 'harm.crime.out.en',
    label: 'harmful',
    category: 'crime',
    score: 0.85,
    re: /(to (make|cook|synthesize) |(making|cooking|synthesizing) )(meth|methamphetamine|fentanyl|crack)\b.{0,80}(first|step \d|you('ll| will)? need|mix|combine|heat|dissolve)|pseudoephedrine .{0,40}(red phosphorus|lithium|anhydrous ammonia)/,
  },
  {
    id: 'harm.self.en',
    label: 'harmful',
    category: 'self_harm',
    score: 0.9,
    re: /(how (to|do i|can i) |best way to |painless(ly)? |i want to |help me )(kill myself|commit suicide|end my life|die|cut myself|self-harm|overdose)|(suicide|overdose) (method|methods|dose)|how many .{0,20}(pills|tablets) .{0,20}(to die|lethal|kill)/,
  },
  {
    id: 'harm.self.zh',
    label: 'harmful',
    category: 'self_harm',
    score: 0.9,
    re: /(怎么|如何|怎样|想|教我|无痛|最快).{0,6}(自杀|结束(自己的)?生命|割腕|轻生|去死|自残)|(吃|吞)多少.{0,6}(药|片).{0,4}(会死|能死|致死)|致死(剂)?量/,
  },
  {
    id: 'harm.sexual.en',
    label: 'harmful',
    category: 'sexual',
    score: 0.9,
    re: /(write|describe|generate|tell me) .{0,20}(explicit|erotic|porn|pornographic|nsfw|sex scene|sexual story)|(nude|naked|sexual) .{0,10}(minor|child|kid|teen|underage)|child porn|\bcsam\b/,
  },
  {
    id: 'harm.sexual.zh',
    label: 'harmful',
    category: 'sexual',
    score: 0.9,
    re: /(写|描写|生成|讲).{0,8}(色情|黄色|淫秽|性爱|露骨|成人)(小说|故事|内容|描写|情节|片段)?|(未成年|儿童|幼女|萝莉).{0,6}(色情|裸|性)|黄色网站|色情网站/,
  },
  {
    id: 'harm.hate.en',
    label: 'harmful',
    category: 'hate',
    score: 0.85,
    re: /(why are|all|write .{0,20}(saying|that)) .{0,20}(blacks|jews|muslims|gays|women|immigrants|chinese|asians|mexicans) .{0,20}(inferior|subhuman|should (die|be killed|be deported)|animals|vermin|stupid|evil)|(insult|joke|slur)s? (about|for|against) (black|jewish|muslim|gay|asian|disabled)/,
  },
  {
    id: 'harm.hate.zh',
    label: 'harmful',
    category: 'hate',
    score: 0.85,
    re: /(黑人|犹太人|穆斯林|同性恋|女人|外地人|农村人|残疾人|少数民族|河南人).{0,8}(都是|就是|天生).{0,6}(劣等|低等|垃圾|畜生|该死|贱|蠢|骗子)|(写|编|骂).{0,8}(侮辱|歧视|辱骂).{0,6}(黑人|犹太人|穆斯林|同性恋|女性|残疾人|少数民族)/,
  },
  {
    id: 'harm.crime.en',
    label: 'harmful',
    category: 'crime',
    score: 0.85,
    re: /(how (to|do i|can i) |help me |teach me to |best way to |ways to )(make|cook|synthesize|buy|sell|get) (meth|cocaine|heroin|fentanyl|drugs|lsd)|(how (to|do i|can i) |help me |teach me to |best way to |ways to )(launder money|steal (a|someone|credit)|shoplift|hack into|break into|pick a lock to|hotwire|counterfeit|forge|evade taxes|scam|phish|make a fake id|write (a )?(malware|ransomware|keylogger|virus))|(buy|sell|buying|selling|use|using|cash out|where (can i|to) (get|find))( some| a)? (stolen|cloned) (credit )?cards?|carding/,
  },
  {
    id: 'harm.crime.zh',
    label: 'harmful',
    category: 'crime',
    score: 0.85,
    re: /(怎么|如何|教我|帮我|怎样|哪里|方法).{0,6}(制毒|制作冰毒|买(到)?(毒品|冰毒|大麻|枪)|洗钱|偷(东西|钱|车|手机)|入侵|黑进|盗号|诈骗|骗钱|伪造|做假证|逃税|开锁进|撬锁|写(木马|病毒|勒索软件))|(盗刷|套现|洗钱)(信用卡|教程|方法)/,
  },
  // Privacy: digging up a *private person's* details (doxxing, 人肉搜索), not asking a shop, restaurant or bank for
  // its own public contact (客服电话, "the hotel's phone number", CrossWOZ's 他家电话 = that restaurant's phone).
  // So a weak detail (phone, address, location, orders) needs a person as its owner, with no business noun between;
  // only details no business has (home address, ID number, 住址, 身份证, 行踪) may follow 他家/她家.
  {
    id: 'harm.privacy.en',
    label: 'harmful',
    category: 'privacy',
    score: 0.85,
    re: new RegExp(
      `${ASK_EN} .{0,20}${INFO_EN}s? of (the |my |this |that |a |an |some |his |her )?([a-z-]+ ){0,2}${PERSON_EN}\\b(?! (service|support|care|hotline|cent(er|re)|desk|portal))|${ASK_EN} .{0,12}\\b(my|this|that|a|the|his|her|some) ([a-z-]+ )?${PERSON_EN}('s|s'|') ([a-z-]+ )?(${INFO_EN}|number)|${ASK_EN} .{0,20}(?<!(my|our) )(home|residential) address|\\bdox(x)?(ing)? (someone|somebody|him|her|them|this|that|my|a)\\b|other (customers'?|users'?|buyers'?) (orders|addresses|phone numbers|data|information|details)`,
    ),
  },
  {
    id: 'harm.privacy.zh',
    label: 'harmful',
    category: 'privacy',
    score: 0.85,
    re: new RegExp(
      `${ASK_ZH}.{0,8}?${PERSON_ZH}(?:(?!${BIZ_ZH}).){0,8}(${PRIVATE_ZH}|地址|电话|位置|订单|联系方式|微信|qq)|${ASK_ZH}.{0,8}(他|她)(们)?家.{0,4}(住址|家庭住址|住在哪|门牌号)|${PERSON_ZH}的?${PRIVATE_ZH}(是|在|多少|呢|吗)`,
    ),
  },
  {
    id: 'harm.privacy.zh2',
    label: 'harmful',
    category: 'privacy',
    score: 0.85,
    // 人肉(搜索) as a request, not a question about it ("人肉搜索违法吗" stays benign).
    re: /人肉(搜索)?(一下|出|下)|(帮我|给我|替我|能不能|能否|可以|我要|我想|教我|怎么|如何)(去)?人肉|开盒(他|她|这个人|那个人|某人)/,
  },
  {
    id: 'harm.politics.en',
    label: 'harmful',
    category: 'politics',
    score: 0.7,
    re: /(who should i vote for|which (party|candidate) is better|your (opinion|view) on (the )?(election|president|communist party|taiwan independence|tiananmen))/,
  },
  {
    id: 'harm.politics.zh',
    label: 'harmful',
    category: 'politics',
    score: 0.7,
    re: /(你(怎么看|觉得|支持).{0,8}(选举|总统|共产党|台独|六四|领导人|政府)|(投票给|支持)(哪个|谁)(党|候选人))/,
  },
  {
    id: 'harm.offtopic.en',
    label: 'harmful',
    category: 'off_topic',
    score: 0.6,
    re: /(write (me )?(a|an) (poem|essay|song|novel|homework)|solve this (math|equation)|write (python|javascript|code) (for|to)|what's the weather|tell me a joke)/,
  },
  {
    id: 'harm.offtopic.zh',
    label: 'harmful',
    category: 'off_topic',
    score: 0.6,
    re: /(写(一首|一篇)(诗|作文|论文|小说)|帮我(写作业|做作业|解方程|写代码)|讲个笑话)/,
  },
];

export interface RuleHit {
  id: string;
  label: GuardLabel;
  category?: HarmCategory;
  score: number;
}

/** Runs every rule over the views; questions *about* attacks damp injection/jailbreak scores. */
export function runRules(views: readonly string[], categories: ReadonlySet<HarmCategory>): RuleHit[] {
  const hits: RuleHit[] = [];
  const seen = new Set<string>();
  for (const v of views) {
    const about = ABOUT_ATTACKS.test(v);
    for (const r of RULES) {
      if (seen.has(r.id)) continue;
      if (r.category !== undefined && !categories.has(r.category)) continue;
      if (!r.re.test(v)) continue;
      seen.add(r.id);
      const damp = about && r.label !== 'harmful' ? 0.45 : 1;
      hits.push({ id: r.id, label: r.label, category: r.category, score: r.score * damp });
    }
  }
  return hits;
}

/**
 * Masks the spans the given rules match in `text` (for `mask` actions on attack/harmful labels). Rules are
 * written for the normalised view, so this only finds plain (not obfuscated) occurrences; the caller re-scores
 * the result and blocks when the label still fires. Returns undefined when nothing could be located.
 */
export function maskRuleMatches(text: string, ids: readonly string[], placeholder = '[removed]'): string | undefined {
  const lower = text.toLowerCase();
  // Positions only map back when lower-casing kept every UTF-16 unit in place (true for ASCII and CJK).
  if (lower.length !== text.length) return undefined;
  const spans: [number, number][] = [];
  for (const id of ids) {
    const r = RULES.find((x) => x.id === id);
    if (!r) continue;
    const re = new RegExp(r.re.source, r.re.flags.includes('g') ? r.re.flags : `${r.re.flags}g`);
    for (const m of lower.matchAll(re)) if (m[0].length > 0) spans.push([m.index, m.index + m[0].length]);
  }
  if (spans.length === 0) return undefined;
  spans.sort((a, b) => a[0] - b[0]);
  let out = '';
  let at = 0;
  for (const [s, e] of spans) {
    if (e <= at) continue;
    out += text.slice(at, Math.max(at, s)) + (s >= at ? placeholder : '');
    at = e;
  }
  return out + text.slice(at);
}
