"""Content of the demo desk: people, conversations, templates and articles (RU and EN)."""

from __future__ import annotations

AGENTS = [
    ("alice", "Alice Morgan", "lead", "first-line"),
    ("boris", "Борис Смирнов", "agent", "first-line"),
    ("chen", "Chen Wei", "agent", "second-line"),
    ("dasha", "Дарья Ким", "agent", "billing"),
]

# name, email or None, telegram (user id, username) or None, language, company
CUSTOMERS = [
    ("Ivan Petrov", "ivan.petrov@mail.ru", (5011, "ivanp"), "ru", "ООО Ромашка"),
    ("Olga Sidorova", "olga@sidorova.ru", (5012, "olga_s"), "ru", ""),
    ("John Carter", "john@carter-design.com", (5013, "jcarter"), "en", "Carter Design"),
    ("Maria Garcia", "maria.garcia@example.es", None, "en", ""),
    ("Алексей Кузнецов", "kuznetsov@yandex.ru", (5015, "akuz"), "ru", "ИП Кузнецов"),
    ("Emma Wilson", "emma.wilson@gmail.test", None, "en", "Wilson & Co"),
    ("Сергей Волков", None, (5017, "volkov_s"), "ru", ""),
    ("Анна Морозова", "anna.morozova@rambler.ru", None, "ru", "Школа №57"),
    ("Liam O'Brien", "liam@obrien.ie", None, "en", ""),
    ("Наталья Павлова", None, (5020, "npavlova"), "ru", ""),
    ("Yuki Tanaka", "yuki@tanaka.jp", None, "en", "Tanaka Trading"),
    ("Дмитрий Соколов", "sokolov@bk.ru", (5022, "dsokolov"), "ru", ""),
    ("Sophie Martin", "sophie.martin@orange.fr", None, "en", ""),
    ("Екатерина Лебедева", None, (5024, "katya_l"), "ru", ""),
    ("Michael Brown", "m.brown@brownlogistics.com", None, "en", "Brown Logistics"),
    ("Павел Новиков", "p.novikov@gmail.com", None, "ru", ""),
    ("Lucas Silva", None, (5027, "lucas_s"), "en", ""),
    ("Ирина Фёдорова", "irina.fedorova@mail.ru", None, "ru", "Аптека Здоровье"),
    ("Noah Schmidt", "noah@schmidt.de", None, "en", ""),
    ("Виктор Егоров", None, (5030, "vegorov"), "ru", ""),
    ("Chloe Dubois", "chloe@dubois.fr", (5031, "chloe_d"), "en", ""),
    ("Татьяна Козлова", "kozlova.t@yandex.ru", None, "ru", ""),
    ("Oliver Jones", "oliver.jones@jones.co.uk", None, "en", "Jones Bakery"),
    ("Максим Орлов", None, (5034, "max_orlov"), "ru", ""),
    ("Ava Thompson", "ava.t@proton.test", None, "en", ""),
    ("Юлия Андреева", "yulia.andreeva@mail.ru", (5036, "yulia_a"), "ru", ""),
    ("Ethan Clark", None, (5037, "ethanc"), "en", ""),
    ("Роман Макаров", "makarov@makarov-it.ru", None, "ru", "Макаров ИТ"),
    ("Isabella Rossi", "isabella.rossi@libero.it", None, "en", ""),
    ("Светлана Никитина", None, (5040, "sveta_n"), "ru", ""),
    ("Mateo Fernández", "mateo@fernandez.es", None, "en", ""),
    ("Георгий Захаров", "zakharov@list.ru", None, "ru", ""),
]

# topic conversations: (language, subject, customer opening, agent reply or None, follow-up or None, tags, priority)
TOPICS = [
    (
        "ru",
        "Не работает принтер после обновления",
        "Здравствуйте! После обновления драйвера принтер HP LaserJet перестал печатать. Пишет «ошибка очереди печати». Что делать?",
        "Здравствуйте! Попробуйте перезапустить службу печати: Панель управления → Службы → «Диспетчер печати» → Перезапустить. Если не поможет — пришлите, пожалуйста, снимок экрана с ошибкой.",
        "Перезапустил, всё равно не печатает. Скриншот приложил.",
        ["printer", "hardware"],
        "high",
    ),
    (
        "en",
        "Invoice #4471 charged twice",
        "Hi, I was charged twice for invoice #4471 this month. Can you refund the duplicate payment?",
        "Hello! I'm sorry about that. I can see two payments for #4471; I've started a refund for the second one, it takes 3-5 business days.",
        None,
        ["billing", "refund"],
        "high",
    ),
    (
        "ru",
        "Как сменить тариф?",
        "Добрый день. Хочу перейти с тарифа «Старт» на «Бизнес». Как это сделать без потери данных?",
        None,
        None,
        ["billing", "tariff"],
        "normal",
    ),
    (
        "en",
        "Cannot log in — password reset e-mail never arrives",
        "I requested a password reset three times but no e-mail arrives. Checked spam too.",
        "Thanks for letting us know. Your address had a typo in our system (gmial.com). I've corrected it — please try the reset again.",
        "It worked, thank you!",
        ["login", "account"],
        "normal",
    ),
    (
        "ru",
        "Срочно: сайт не открывается",
        "Сайт выдаёт 502 Bad Gateway уже 20 минут, клиенты не могут оформить заказ!!!",
        None,
        None,
        ["outage"],
        "urgent",
    ),
    (
        "en",
        "Feature request: export to Excel",
        "Would it be possible to export the monthly report to Excel instead of PDF?",
        "Great idea — I've passed it to the product team. You can already export CSV from Reports → Export, which Excel opens.",
        None,
        ["feature-request"],
        "low",
    ),
    (
        "ru",
        "Жалоба на оператора",
        "Вчера ваш сотрудник очень грубо ответил мне в чате. Прошу разобраться.",
        "Приносим извинения. Мы разберёмся с ситуацией и свяжемся с вами до конца дня.",
        None,
        ["complaint"],
        "high",
    ),
    (
        "en",
        "Delivery delayed — order 88213",
        "My order 88213 was supposed to arrive on Monday. Tracking hasn't updated since Friday.",
        None,
        None,
        ["delivery"],
        "normal",
    ),
    (
        "ru",
        "Вопрос по API: лимит запросов",
        "Какой лимит запросов к API на тарифе Бизнес? Получаем 429 при 10 запросах в секунду.",
        "Лимит на тарифе «Бизнес» — 20 запросов в секунду на ключ, но не более 5 параллельных соединений. Вероятно, вы упираетесь во второе ограничение.",
        "Да, у нас было 8 соединений. Спасибо, теперь работает.",
        ["api"],
        "normal",
    ),
    (
        "en",
        "How do I add a second user?",
        "We hired a new colleague. How do I add her to our account?",
        "Go to Settings → Team → Invite and enter her e-mail. She'll get an invitation link valid for 7 days.",
        None,
        ["account", "how-to"],
        "low",
    ),
    (
        "ru",
        "Возврат денег за неиспользованный период",
        "Закрываем компанию, прошу вернуть деньги за оставшиеся 4 месяца подписки.",
        None,
        None,
        ["billing", "refund"],
        "normal",
    ),
    (
        "en",
        "App crashes on startup (Android 15)",
        "Since the last update the app crashes immediately on my Pixel 9. Reinstalling didn't help.",
        "Thanks for the report! This is a known issue with version 4.2.0 on Android 15; a fix (4.2.1) ships tomorrow.",
        None,
        ["bug", "mobile"],
        "high",
    ),
    (
        "ru",
        "Не приходят SMS с кодом",
        "Не приходит SMS с кодом подтверждения на номер +7 912 ***-**-45.",
        None,
        None,
        ["login", "sms"],
        "high",
    ),
    (
        "en",
        "Question about data retention",
        "How long do you keep our customers' data after we cancel? We need this for our GDPR records.",
        "We delete all customer data 30 days after cancellation; backups expire after a further 60 days. Our DPA has the details.",
        None,
        ["gdpr", "legal"],
        "normal",
    ),
    (
        "ru",
        "Спасибо за помощь!",
        "Хочу поблагодарить Дарью за быструю помощь с документами. Всё получили.",
        "Спасибо за тёплые слова! Передадим Дарье.",
        None,
        ["thanks"],
        "low",
    ),
]

TELEGRAM_LINES = {
    "ru": [
        "Здравствуйте, у меня не проходит оплата картой",
        "Бот не отвечает на команду /status",
        "Подскажите, когда будет доставка?",
        "Как привязать второй номер телефона?",
        "Приложение не синхронизирует заметки",
        "Можно ли оплатить по счёту для юрлица?",
    ],
    "en": [
        "Hi! My card payment keeps failing",
        "Is there a student discount?",
        "The app logs me out every few minutes",
        "Where can I download my invoices?",
    ],
}

TEMPLATES = [
    (
        "acknowledgement-en",
        "",
        "Hello {{ customer.name }},\n\nthank you for writing to {{ desk.name }}. "
        "Your request is ticket #{{ ticket.id }}. We will answer {{ sla.promise }}.\n\n"
        "To add details, just reply to this message.",
        "auto",
    ),
    (
        "acknowledgement-ru",
        "",
        "Здравствуйте, {{ customer.name }}!\n\nСпасибо за обращение в {{ desk.name }}. "
        "Номер вашей заявки — #{{ ticket.id }}. Мы ответим {{ sla.promise }}.\n\n"
        "Чтобы дополнить заявку, просто ответьте на это сообщение.",
        "auto",
    ),
    ("greeting-en", "", "Hello {{ customer.first_name }},\n\n", "general"),
    ("greeting-ru", "", "Здравствуйте, {{ customer.first_name }}!\n\n", "general"),
    (
        "password-reset",
        "",
        "Hello {{ customer.first_name }},\n\nto reset your password open "
        "https://acme.test/reset and enter {{ customer.email }}. The link in the e-mail is valid for one hour.\n\n"
        "Best regards,\n{{ agent.name }}, {{ desk.name }}",
        "login",
    ),
    (
        "сброс-пароля",
        "",
        "Здравствуйте, {{ customer.first_name }}!\n\nЧтобы сбросить пароль, откройте "
        "https://acme.test/reset и введите {{ customer.email }}. Ссылка в письме действует один час.\n\n"
        "С уважением,\n{{ agent.name }}, {{ desk.name }}",
        "login",
    ),
    (
        "refund-started",
        "",
        "Hello {{ customer.first_name }},\n\nI've started the refund for ticket "
        "#{{ ticket.id }}. It reaches your card in 3-5 business days.\n\n{{ agent.name }}",
        "billing",
    ),
    (
        "возврат-оформлен",
        "",
        "Здравствуйте, {{ customer.first_name }}!\n\nВозврат по заявке #{{ ticket.id }} "
        "оформлен, деньги поступят на карту в течение 3–5 рабочих дней.\n\n{{ agent.name }}",
        "billing",
    ),
    (
        "closing",
        "",
        "Glad we could help! If anything else comes up, just reply here.\n\n{{ agent.name }}",
        "general",
    ),
    (
        "need-screenshot-ru",
        "",
        "Здравствуйте, {{ customer.first_name }}! Пришлите, пожалуйста, снимок экрана "
        "с ошибкой — так мы быстрее найдём причину.",
        "general",
    ),
]

KB = [
    (
        "Как сбросить пароль",
        "login",
        True,
        "ru",
        "# Как сбросить пароль\n\n1. Откройте https://acme.test/reset\n2. Введите адрес почты.\n"
        "3. Перейдите по ссылке из письма (она действует **1 час**).\n\nЕсли письмо не пришло — проверьте папку «Спам».",
    ),
    (
        "Resetting your password",
        "login",
        True,
        "en",
        "# Resetting your password\n\n1. Open https://acme.test/reset\n2. Enter your e-mail address.\n"
        "3. Follow the link in the e-mail (valid for **one hour**).\n\nNo e-mail? Check your spam folder.",
    ),
    (
        "Принтер не печатает после обновления драйвера",
        "printer",
        True,
        "ru",
        "# Принтер не печатает\n\n- Перезапустите службу «Диспетчер печати».\n- Удалите задания из очереди.\n"
        "- Переустановите драйвер с сайта производителя.\n",
    ),
    (
        "Refund policy",
        "billing",
        True,
        "en",
        "# Refund policy\n\nDuplicate charges are refunded in full within 3-5 business days. "
        "Unused months are refunded pro rata when an account is closed.",
    ),
    (
        "Тарифы и смена тарифа",
        "billing",
        True,
        "ru",
        "# Тарифы\n\n| Тариф | Пользователи | Цена |\n|---|---|---|\n| Старт | 3 | 990 ₽ |\n| Бизнес | 20 | 4 900 ₽ |\n\n"
        "Смена тарифа: Настройки → Оплата → Сменить тариф. Данные сохраняются.",
    ),
    (
        "API rate limits",
        "api",
        True,
        "en",
        "# API rate limits\n\nBusiness plan: 20 requests/s per key and at most 5 concurrent connections. "
        "A 429 response carries `Retry-After`.",
    ),
    (
        "Escalation to second line (internal)",
        "internal",
        False,
        "en",
        "# Escalation\n\nEscalate to second line when the issue needs logs from production or a code change. "
        "Add a note with steps to reproduce. Outages: page the on-call engineer first.",
    ),
    (
        "Работа с жалобами (внутреннее)",
        "internal",
        False,
        "ru",
        "# Жалобы\n\nЖалобу на сотрудника передайте руководителю смены в течение часа. Поставьте тег `complaint`.",
    ),
]
