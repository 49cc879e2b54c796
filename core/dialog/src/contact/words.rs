//! The words contact extraction knows by heart: first names (and how Russian ones inflect),
//! surname endings, job titles, and words that are never a name or a company.

/// Common first names, in lower case with `ё` written as `е`, to tell "Сергей" from
/// "Оформим" when a message has a single capitalised word in a name's place. Surnames are
/// recognised by their endings instead. Names that are also common words ("Will", "Hope",
/// "Лада", "Слава") are left out: they would turn a sentence into a contact.
#[rustfmt::skip]
pub(super) const FIRST_NAMES: &[&str] = &[
    // Russian, with the usual short forms.
    "александр", "александра", "алексей", "алекс", "алена", "алина", "алиса", "алла", "альберт",
    "анастасия", "анатолий", "андрей", "анна", "антон", "аркадий", "арсений", "артем", "артур",
    "борис", "вадим", "валентин", "валентина", "валерий", "валерия", "варвара", "василий", "вера",
    "вероника", "виктор", "виктория", "виталий", "владимир", "владислав", "влад", "вячеслав",
    "галина", "геннадий", "георгий", "герман", "глеб", "григорий", "даниил", "данил", "дарья",
    "даша", "денис", "диана", "дима", "дмитрий", "евгений", "евгения", "егор", "екатерина",
    "катя", "елена", "лена", "елизавета", "жанна", "захар", "зинаида", "зоя", "иван", "игорь",
    "илья", "инна", "ирина", "ира", "кирилл", "клавдия", "константин", "кристина", "ксения",
    "лариса", "леонид", "лев", "лидия", "любовь", "людмила", "маргарита", "марина", "мария",
    "маша", "марк", "матвей", "максим", "михаил", "миша", "надежда", "наталья", "наталия",
    "наташа", "никита", "николай", "нина", "оксана", "олег", "ольга", "оля", "павел", "паша",
    "петр", "полина", "роман", "рома", "руслан", "светлана", "света", "святослав", "семен",
    "сергей", "серега", "снежана", "софия", "софья", "станислав", "степан", "тамара", "татьяна",
    "таня", "тимофей", "тимур", "ульяна", "федор", "филипп", "эдуард", "элина", "эльвира", "юлия",
    "юля", "юрий", "яна", "ярослав", "ян", "айгуль", "азат", "айдар", "ринат", "рустам", "камила",
    "карина", "милана", "алсу", "гульнара", "динара", "зарина", "ильдар", "марат", "рамиль",
    "фарид", "эмиль", "саша", "женя", "леша", "вова", "коля", "костя", "петя", "толя", "юра",
    "валя", "галя", "люба", "надя", "агата", "аделина", "азалия", "алевтина", "алик", "альбина",
    "амир", "амина", "ангелина", "антонина", "анфиса", "арина", "артемий", "ася", "аня", "богдан",
    "богдана", "борислав", "василиса", "вениамин", "вика", "виолетта", "витя", "всеволод", "гена",
    "гоша", "гриша", "гульназ", "давид", "дамир", "дана", "дарина", "демид", "демьян", "диляра",
    "дина", "ева", "ефим", "злата", "игнат", "изабелла", "ильнур", "ильмира", "инга",
    "иннокентий", "камилла", "каролина", "кира", "клара", "ксюша", "лейла", "леся", "лиана",
    "лилия", "лиля", "лина", "лиза", "макар", "мадина", "майя", "мила", "милена", "мирон",
    "мирослав", "мирослава", "митя", "назар", "наиль", "наиля", "настя", "нелли", "ника", "олеся",
    "прохор", "радик", "раиса", "регина", "рената", "ренат", "римма", "рита", "родион", "роза",
    "ростислав", "руслана", "сабина", "савва", "савелий", "самир", "сережа", "серафима", "соня",
    "стас", "стефания", "таисия", "тагир", "тарас", "тигран", "тихон", "тоня", "фаина", "фатима",
    "федя", "феликс", "шамиль", "эвелина", "элеонора", "эльдар", "эльмира", "эмилия", "эмма",
    "эрик", "юлиана", "яков", "ярослава", "ваня", "инесса", "мирра", "элла", "алия", "айгерим",
    "асель", "данияр", "ерлан", "нурлан", "ислам", "хасан", "карен", "ашот", "армен", "гаяне",
    "нана", "тамерлан", "эдгар", "ирек", "ильназ", "гузель", "лейсан", "резеда", "зульфия",
    // English and other Latin-script names.
    "aaron", "adam", "alan", "albert", "alex", "alexander", "alexandra", "alice", "alicia",
    "amanda", "amelia", "amy", "andrew", "andy", "angela", "anna", "anne", "anthony", "ben",
    "benjamin", "bob", "brian", "carl", "carlos", "caroline", "charles", "charlie", "chris",
    "christian", "christopher", "claire", "daniel", "dan", "david", "diana", "dmitry", "elena",
    "elizabeth", "ella", "emily", "emma", "eric", "eva", "frank", "george", "grace", "hannah",
    "harry", "helen", "henry", "ian", "igor", "irina", "isabella", "ivan", "jack", "jacob",
    "james", "jane", "jason", "jennifer", "jessica", "jim", "joe", "john", "jonathan", "joseph",
    "julia", "kate", "katherine", "kevin", "laura", "linda", "lisa", "lucy", "maria", "mark",
    "martin", "mary", "matthew", "max", "maxim", "michael", "mike", "natalia", "nick", "nicholas",
    "nina", "oliver", "olga", "paul", "peter", "priya", "rachel", "richard", "robert", "rahul",
    "ryan", "sam", "samuel", "sarah", "sergey", "sofia", "sophia", "steve", "steven", "susan",
    "thomas", "tom", "victor", "victoria", "william", "yuri", "anton", "pavel", "roman", "oleg",
    "ksenia", "tatiana", "svetlana", "marina", "andrey", "alexey", "mikhail", "nikolay",
    "vladimir", "denis", "artem", "kirill", "ekaterina", "anastasia", "wei", "li", "mohammed",
    "ahmed", "ali", "omar", "fatima", "hans", "pierre", "marco", "luca", "giulia", "juan", "jose",
    "ana", "lucas", "noah", "liam", "ethan", "mia", "zoe", "abigail", "adrian", "aidan", "alexis",
    "alison", "allison", "amber", "andrea", "angelina", "annie", "arthur", "ashley", "audrey",
    "austin", "barbara", "becky", "bella", "beth", "betty", "billy", "blake", "brandon", "brenda",
    "brett", "bridget", "brooke", "bruce", "bryan", "caitlin", "calvin", "cameron", "carla",
    "carmen", "carol", "carolyn", "casey", "catherine", "chad", "charlotte", "chelsea", "cheryl",
    "chloe", "cindy", "claudia", "cody", "colin", "connor", "courtney", "craig", "crystal",
    "cynthia", "dale", "dana", "darren", "dave", "deborah", "debbie", "dennis", "derek", "diane",
    "dominic", "donald", "donna", "doug", "douglas", "dylan", "eddie", "edward", "eileen",
    "elaine", "eleanor", "ellie", "erin", "evan", "evelyn", "fiona", "francis", "gabriel", "gary",
    "gavin", "gemma", "gina", "gloria", "gordon", "graham", "greg", "gregory", "hailey", "harold",
    "harriet", "hayley", "heather", "holly", "hugo", "isaac", "isabel", "jackie", "jacqueline",
    "jake", "jamie", "janet", "jasmine", "jeff", "jeffrey", "jenna", "jenny", "jeremy", "jerry",
    "jesse", "jill", "joan", "joanna", "jodie", "joel", "jordan", "josh", "joshua", "joyce",
    "judy", "justin", "karen", "katie", "kayla", "keisha", "keith", "kelly", "kenneth", "kerry",
    "kimberly", "kyle", "lauren", "leah", "leo", "leon", "logan", "lori", "louis", "louise",
    "luke", "lydia", "madison", "maggie", "marcus", "margaret", "marie", "marilyn", "matt",
    "megan", "melanie", "melissa", "michelle", "molly", "monica", "nancy", "naomi", "natalie",
    "nathan", "neil", "nicole", "nora", "olivia", "owen", "pamela", "patricia", "patrick",
    "penny", "philip", "phillip", "phoebe", "rebecca", "ricky", "robin", "ross", "russell",
    "ruth", "sally", "samantha", "sandra", "sara", "scott", "sean", "shane", "sharon", "shaun",
    "sheila", "shirley", "sophie", "stacy", "stella", "stephanie", "stephen", "stuart", "sylvia",
    "tara", "taylor", "teresa", "terry", "tim", "timothy", "tina", "toby", "todd", "tony",
    "tracy", "trevor", "tyler", "valerie", "vanessa", "vera", "vincent", "wayne", "wendy",
    "zachary", "jonas", "lars", "sven", "erik", "anders", "nils", "ingrid", "astrid", "freya",
    "tomasz", "piotr", "pawel", "krzysztof", "marek", "agnieszka", "katarzyna", "magdalena", "jan",
    "jakub", "lukas", "matthias", "stefan", "jurgen", "klaus", "katrin", "sabine", "ursula",
    "francois", "jean", "camille", "amelie", "antoine", "julien", "mathieu", "nicolas", "lucia",
    "giovanni", "alessandro", "francesca", "chiara", "matteo", "diego", "pablo", "javier",
    "miguel", "raj", "rajesh", "amit", "anil", "sunil", "deepak", "vikram", "arjun", "ananya",
    "neha", "pooja", "divya", "sanjay", "aisha", "hassan", "yusuf", "mustafa", "khalid", "layla",
    "zainab", "mehmet", "emre", "elif", "kenji", "hiroshi", "yuki", "akira", "kwame", "amara",
    "chinedu", "tunde", "dmitri", "natasha", "sasha", "yulia", "aleksandr", "aleksei", "nadia",
];

/// Russian surname endings: "Гришин", "Белова", "Ковалёва", "Соколов", "Волков".
#[rustfmt::skip]
pub(super) const SURNAME_ENDINGS: &[&str] = &[
    "ов", "ев", "ёв", "ин", "ын", "ова", "ева", "ёва", "ина", "ына", "ский", "ская", "цкий",
    "цкая", "ой", "ич", "енко", "ко", "ук", "юк", "ян", "дзе", "швили", "ых", "их",
    // The same surnames written in Latin letters: "Sadykov", "Ivanova", "Kowalsky".
    "ov", "ev", "ova", "eva", "in", "ina", "sky", "skiy", "skaya", "enko", "yan", "dze",
    "shvili", "uly", "kyzy",
];

/// Words that start a sentence or label a field: never a name or a company on their own.
#[rustfmt::skip]
pub(super) const NOT_NAMES: &[&str] = &[
    "да", "нет", "ок", "окей", "ладно", "хорошо", "спасибо", "давайте", "пришлите", "присылайте",
    "запишите", "записывайте", "оформим", "оформляем", "понял", "поняла", "понятно", "если",
    "что", "привет", "здравствуйте", "добрый", "интересно", "отлично", "супер", "ну", "вот",
    "контакт", "контакты", "звоните", "пишите", "перезвоните", "жду", "мой", "моя", "мои", "наш",
    "наша", "компания", "директор", "менеджер", "руководитель", "склад", "спс", "ой", "стоп",
    "правильный", "верный", "убедили", "договорились", "можно", "нужно", "нужен", "нужна",
    "отправьте", "скиньте", "звонить", "после", "сегодня", "завтра", "извините", "hi", "hello",
    "hey", "ok", "okay", "fine", "great", "thanks", "thank", "sorry", "please", "yes", "no",
    "alright", "cool", "sure", "call", "send", "my", "our", "we", "the", "contact", "typo",
    "email", "phone", "tel", "mail", "number", "perfect", "good", "excellent", "deal", "sounds",
    "let", "lets", "let's", "regards", "best", "cheers", "ceo", "cfo", "manager", "director",
    "tomorrow", "today", "also", "and", "but", "or", "i", "i'm", "it", "this", "it's", "its",
    "here's", "that's", "that", "im", "i’m", "it’s", "here’s", "that’s",
    // Words that follow "I'm" capitalised without being a name.
    "interested", "looking", "just", "not", "here", "new", "glad", "happy", "from", "in", "at",
    "with", "a", "an", "head", "owner", "founder", "responsible", "calling", "writing",
    "still", "back", "done", "afraid", "wondering", "thinking", "trying", "going", "planning",
    // Pronouns: «Меня зовут Игорь» names Игорь, never «Меня».
    "меня", "мне", "его", "её", "ее", "их", "нас", "вас", "вам", "она", "он", "они", "мы", "вы",
    "тут", "здесь", "рад", "рада", "из", "не", "владелец", "владелица", "основатель",
    "основательница", "администратор", "админ",
    // Greetings, closings and corrections that open a line.
    "доброе", "добрый", "день", "утро", "вечер", "уважением", "поправка", "упс", "morning",
    "evening", "afternoon", "btw", "kind", "sincerely", "ps", "hmm", "oops", "actually", "sent",
    "оформляйте", "записала", "записал", "берем", "берём", "беру", "возьмем", "возьму", "sounds",
    // Days and months: "call me Monday", "в Понедельник".
    "понедельник", "вторник", "среда", "среду", "четверг", "пятница", "пятницу", "суббота",
    "субботу", "воскресенье", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday",
    "sunday", "январь", "февраль", "март", "апрель", "май", "июнь", "июль", "август", "сентябрь",
    "октябрь", "ноябрь", "декабрь", "january", "february", "march", "april", "may", "june",
    "july", "august", "september", "october", "november", "december",
    // Cities: where the prospect is, not who they are or where they work.
    "москва", "москвы", "петербург", "санкт-петербург", "питер", "спб", "мск", "казань",
    "екатеринбург", "новосибирск", "нижний", "самара", "омск", "челябинск", "уфа", "пермь",
    "воронеж", "волгоград", "краснодар", "красноярск", "тюмень", "сочи", "калининград",
    "владивосток", "иркутск", "минск", "алматы", "астана", "ташкент", "тбилиси", "ереван",
    "london", "paris", "berlin", "madrid", "rome", "dubai", "moscow", "york", "chicago", "boston",
    "atlanta", "seattle", "toronto", "sydney", "warsaw", "prague", "vienna", "amsterdam",
    "stockholm", "riga", "tallinn", "vilnius", "helsinki", "dublin", "manchester",
];

/// Words that mark a company rather than a person: "Balt Logistics", "HomeGoods Market".
#[rustfmt::skip]
pub(super) const COMPANY_WORDS: &[&str] = &[
    "logistics", "market", "foods", "food", "group", "trade", "trading", "inc", "llc", "ltd",
    "company", "shop", "store", "systems", "solutions", "service", "services", "holding",
    "логистик", "логистика", "групп", "трейд", "маркет", "сервис", "холдинг", "торг", "строй",
    // Kinds of organisation: "Steppe University", "BrightMind Academy", "Школа Рисования".
    "university", "academy", "school", "college", "institute", "studio", "agency", "bank",
    "center", "centre", "clinic", "lab", "labs", "consulting", "partners", "media", "corp",
    "foundation", "университет", "академия", "школа", "институт", "колледж", "фонд", "центр",
    "студия", "клиника", "агентство", "лаборатория", "банк",
    // What a business sells or does: "Cedar Lane Distributors", "Ridgeway Supplies".
    "distributors", "distribution", "supplies", "supply", "wholesale", "retail", "freight",
    "transport", "motors", "dental", "pharma", "industries", "manufacturing", "brewing",
    "bakery", "coffee", "kitchen", "farms", "works", "studios", "design", "digital", "tech",
    "technologies", "software", "ventures", "capital", "realty", "properties", "hotels",
    "restaurants", "salon", "fitness", "athletic", "gmbh", "plc", "llp", "co",
];

/// Legal forms written around a company's name: the name is what is left without them.
#[rustfmt::skip]
pub(super) const LEGAL_FORMS: &[&str] = &[
    "ооо", "оао", "зао", "пао", "ао", "нко", "ано", "ип", "чп", "тоо", "llc", "l.l.c", "inc",
    "ltd", "limited", "gmbh", "corp", "corporation", "co", "llp", "plc", "s.a", "sa", "ag",
    "b.v", "bv", "oy", "ab", "pty", "pvt",
];

/// Words of a job title: a line or a part that holds one is a role, never a company or a name.
#[rustfmt::skip]
pub(super) const JOB_TITLE_WORDS: &[&str] = &[
    "manager", "management", "operations", "finance", "financial", "accounting", "accountant",
    "accounts", "procurement", "purchasing", "buyer", "director", "head", "lead", "chief",
    "officer", "ceo", "cfo", "cto", "coo", "cmo", "vp", "president", "owner", "founder",
    "co-founder", "cofounder", "assistant", "coordinator", "specialist", "administrator",
    "analyst", "engineer", "executive", "secretary", "receptionist", "supervisor", "controller",
    "payable", "receivable", "hr", "marketing", "sales", "partner", "consultant", "intern",
    "менеджер", "директор", "руководитель", "бухгалтер", "главбух", "главврач", "администратор",
    "закупщик", "снабженец", "специалист", "ассистент", "секретарь", "управляющий",
    "управляющая", "владелец", "владелица", "основатель", "основательница", "начальник",
    "заведующий", "заведующая", "маркетолог", "логист", "технолог", "юрист", "офис-менеджер",
    "кладовщик", "собственник", "учредитель", "зам", "заместитель", "помощник", "отдел",
    "отдела", "закупок", "продаж", "снабжения", "бухгалтерии",
];
