"""User-interface strings in Kazakh, Russian and English.

One table, key -> {lang: text}. The browser gets it as `/static/i18n.js` (generated from this table,
so there is a single source); Python uses `t()` for the few server-rendered messages. Alarm titles
and event descriptions are not here: they come localised from the core (`console.alarm`,
`console.eventcodes`). `{name}` placeholders are filled in by the caller.
"""

from __future__ import annotations

import importlib
import json
import pkgutil

LANGS = ("kk", "ru", "en")
DEFAULT_LANG = "kk"  # the login page's default before anyone has chosen

STRINGS: dict[str, dict[str, str]] = {
    "app.name": {"kk": "Kuzet", "ru": "Kuzet", "en": "Kuzet"},
    "app.subtitle": {"kk": "Орталықтандырылған күзет пульті", "ru": "Пульт централизованной охраны",
                     "en": "Central monitoring station"},
    "lang.label": {"kk": "Тіл", "ru": "Язык", "en": "Language"},
    "lang.kk": {"kk": "Қазақша", "ru": "Қазақша", "en": "Қазақша"},
    "lang.ru": {"kk": "Русский", "ru": "Русский", "en": "Русский"},
    "lang.en": {"kk": "English", "ru": "English", "en": "English"},

    # login
    "login.title": {"kk": "Жүйеге кіру", "ru": "Вход в систему", "en": "Sign in"},
    "login.username": {"kk": "Пайдаланушы аты", "ru": "Имя пользователя", "en": "Username"},
    "login.password": {"kk": "Құпиясөз", "ru": "Пароль", "en": "Password"},
    "login.submit": {"kk": "Кіру", "ru": "Войти", "en": "Sign in"},
    "login.failed": {"kk": "Пайдаланушы аты немесе құпиясөз қате", "ru": "Неверное имя пользователя или пароль",
                     "en": "Wrong username or password"},
    "login.throttled": {"kk": "Сәтсіз әрекеттер тым көп. Кейінірек қайталаңыз.",
                        "ru": "Слишком много неудачных попыток. Повторите позже.",
                        "en": "Too many failed attempts. Try again later."},
    "login.unreachable": {"kk": "Сервер қолжетімсіз", "ru": "Сервер недоступен", "en": "Server unreachable"},
    "login.hint": {"kk": "Тек күзет ұйымының қызметкерлері үшін", "ru": "Только для сотрудников охранной организации",
                   "en": "For the security organisation's staff only"},
    "logout": {"kk": "Шығу", "ru": "Выйти", "en": "Sign out"},
    "forbidden": {"kk": "Бұл бетке кіру құқығыңыз жоқ", "ru": "Нет доступа к этой странице",
                  "en": "You have no access to this page"},

    # connection indicator
    "conn.online": {"kk": "Байланыс бар", "ru": "На связи", "en": "Live"},
    "conn.offline": {"kk": "Байланыс жоқ", "ru": "Нет связи", "en": "Disconnected"},
    "conn.connecting": {"kk": "Қосылуда…", "ru": "Подключение…", "en": "Connecting…"},
    "conn.retry": {"kk": "{s} с кейін қайта қосылу", "ru": "повтор через {s} с", "en": "retry in {s} s"},
    "conn.slow": {"kk": "Байланыс баяу, қайта қосылу", "ru": "Медленная связь, переподключение",
                  "en": "Connection too slow, reconnecting"},

    # alarm list
    "alarms.heading": {"kk": "Дабылдар", "ru": "Тревоги", "en": "Alarms"},
    "alarms.none": {"kk": "Ашық дабылдар жоқ", "ru": "Открытых тревог нет", "en": "No open alarms"},
    "alarms.open": {"kk": "ашық", "ru": "открыто", "en": "open"},
    "col.priority": {"kk": "Басымдық", "ru": "Приоритет", "en": "Priority"},
    "col.time": {"kk": "Уақыт", "ru": "Время", "en": "Time"},
    "col.object": {"kk": "Объект", "ru": "Объект", "en": "Object"},
    "col.address": {"kk": "Мекенжай", "ru": "Адрес", "en": "Address"},
    "col.event": {"kk": "Оқиға", "ru": "Событие", "en": "Event"},
    "col.zone": {"kk": "Аймақ", "ru": "Зона", "en": "Zone"},
    "col.state": {"kk": "Күйі", "ru": "Состояние", "en": "State"},
    "col.signals": {"kk": "Сигн.", "ru": "Сигн.", "en": "Sig."},
    "col.signals.full": {"kk": "Сигналдар саны", "ru": "Число сигналов", "en": "Signal count"},
    "col.actions": {"kk": "Әрекет", "ru": "Действия", "en": "Actions"},
    "col.account": {"kk": "Аккаунт", "ru": "Аккаунт", "en": "Account"},
    "col.code": {"kk": "Код", "ru": "Код", "en": "Code"},
    "col.receiver": {"kk": "Қабылдағыш", "ru": "Приёмник", "en": "Receiver"},
    "state.new": {"kk": "Жаңа", "ru": "Новая", "en": "New"},
    "state.acknowledged": {"kk": "Қабылданды", "ru": "Принята", "en": "Acknowledged"},
    "state.dispatched": {"kk": "Топ жіберілді", "ru": "ГБР направлена", "en": "Crew dispatched"},
    "state.on-site": {"kk": "Топ орнында", "ru": "ГБР на месте", "en": "Crew on site"},
    "state.closed": {"kk": "Жабылды", "ru": "Закрыта", "en": "Closed"},
    "restored": {"kk": "Қалпына келді", "ru": "Восстановлена", "en": "Restored"},
    "terror_vulnerable": {"kk": "Террористік тұрғыдан осал", "ru": "Уязвим в террористическом отношении",
                          "en": "Terror-vulnerable"},
    "terror_vulnerable.short": {"kk": "Терр. осал", "ru": "ОУТО", "en": "Terror-vuln."},
    "unknown_object": {"kk": "Белгісіз объект", "ru": "Неизвестный объект", "en": "Unknown object"},
    "readonly": {"kk": "Тек қарау", "ru": "Только просмотр", "en": "Read only"},

    # actions
    "action.ack": {"kk": "Қабылдау", "ru": "Принять", "en": "Acknowledge"},
    "action.close": {"kk": "Жабу", "ru": "Закрыть", "en": "Close"},
    "action.note": {"kk": "Ескертпе қосу", "ru": "Добавить заметку", "en": "Add note"},
    "action.cancel": {"kk": "Болдырмау", "ru": "Отмена", "en": "Cancel"},
    "action.save": {"kk": "Сақтау", "ru": "Сохранить", "en": "Save"},
    "action.failed": {"kk": "Әрекет орындалмады", "ru": "Действие не выполнено", "en": "Action failed"},
    "close.title": {"kk": "Дабылды жабу", "ru": "Закрытие тревоги", "en": "Close the alarm"},
    "close.outcome": {"kk": "Нәтиже", "ru": "Результат", "en": "Outcome"},
    "close.note": {"kk": "Ескертпе", "ru": "Примечание", "en": "Note"},
    "close.note.placeholder": {"kk": "Не болды, кімге хабарланды…", "ru": "Что произошло, кого оповестили…",
                               "en": "What happened, who was informed…"},
    "close.confirm": {"kk": "Дабылды жабу", "ru": "Закрыть тревогу", "en": "Close alarm"},
    "outcome.real-alarm": {"kk": "Нақты дабыл", "ru": "Реальная тревога", "en": "Real alarm"},
    "outcome.false-alarm": {"kk": "Жалған дабыл", "ru": "Ложная тревога", "en": "False alarm"},
    "outcome.technical-fault": {"kk": "Техникалық ақау", "ru": "Техническая неисправность",
                                "en": "Technical fault"},
    "outcome.test": {"kk": "Сынақ", "ru": "Проверка", "en": "Test"},
    "outcome.owner-cancelled": {"kk": "Иесі болдырмады", "ru": "Отменена владельцем", "en": "Cancelled by owner"},
    "outcome.other": {"kk": "Басқа", "ru": "Другое", "en": "Other"},

    # side panel: the object card and the alarm's history
    "card.title": {"kk": "Объект картасы", "ru": "Карточка объекта", "en": "Object card"},
    "card.select": {"kk": "Объект картасын көру үшін дабылды таңдаңыз",
                    "ru": "Выберите тревогу, чтобы увидеть карточку объекта",
                    "en": "Select an alarm to see the object card"},
    "card.alarm": {"kk": "Дабыл №{id}", "ru": "Тревога № {id}", "en": "Alarm #{id}"},
    "card.address": {"kk": "Мекенжай", "ru": "Адрес", "en": "Address"},
    "card.coordinates": {"kk": "Координаттар", "ru": "Координаты", "en": "Coordinates"},
    "card.map": {"kk": "Картадан ашу", "ru": "Открыть на карте", "en": "Open map"},
    "card.instructions": {"kk": "Оператор нұсқаулығы", "ru": "Инструкция оператору", "en": "Operator instructions"},
    "card.zones": {"kk": "Аймақтар", "ru": "Зоны", "en": "Zones"},
    "card.contacts": {"kk": "Байланыс тұлғалары", "ru": "Контактные лица", "en": "Contacts"},
    "card.accounts": {"kk": "Аккаунттар", "ru": "Аккаунты", "en": "Accounts"},
    "card.no_object": {"kk": "Аккаунт ешбір объектіге байланбаған", "ru": "Аккаунт не привязан к объекту",
                       "en": "The account is not linked to any object"},
    "card.none": {"kk": "жоқ", "ru": "нет", "en": "none"},
    "card.history": {"kk": "Дабыл тарихы", "ru": "История тревоги", "en": "Alarm history"},
    "card.opened": {"kk": "Ашылған уақыты", "ru": "Открыта", "en": "Opened"},
    "card.last_seen": {"kk": "Соңғы байланыс", "ru": "Последняя связь", "en": "Last contact"},
    "contact.keyholder": {"kk": "Кілт ұстаушы", "ru": "Ответственный", "en": "Keyholder"},
    "event.opened": {"kk": "Ашылды", "ru": "Открыта", "en": "Opened"},
    "event.signal": {"kk": "Сигнал", "ru": "Сигнал", "en": "Signal"},
    "event.restore": {"kk": "Қалпына келу", "ru": "Восстановление", "en": "Restore"},
    "event.acknowledged": {"kk": "Қабылданды", "ru": "Принята", "en": "Acknowledged"},
    "event.dispatched": {"kk": "Топ жіберілді", "ru": "ГБР направлена", "en": "Crew dispatched"},
    "event.on-site": {"kk": "Топ орнында", "ru": "ГБР на месте", "en": "Crew on site"},
    "event.closed": {"kk": "Жабылды", "ru": "Закрыта", "en": "Closed"},
    "event.note": {"kk": "Ескертпе", "ru": "Заметка", "en": "Note"},

    # signals strip and receivers strip
    "signals.heading": {"kk": "Соңғы сигналдар", "ru": "Последние сигналы", "en": "Latest signals"},
    "signals.none": {"kk": "Сигналдар әлі жоқ", "ru": "Сигналов пока нет", "en": "No signals yet"},
    "receivers.heading": {"kk": "Қабылдағыштар", "ru": "Приёмники", "en": "Receivers"},
    "receivers.none": {"kk": "Қабылдағыштар іске қосылмаған", "ru": "Приёмники не запущены",
                       "en": "No receivers running"},
    "receivers.connections": {"kk": "қосылым", "ru": "соед.", "en": "conn."},
    "receivers.per_minute": {"kk": "/мин", "ru": "/мин", "en": "/min"},
    "receivers.rejected": {"kk": "қабылданбады", "ru": "отклонено", "en": "rejected"},
    "receivers.not_acked": {"kk": "расталмады", "ru": "без ACK", "en": "not acked"},
    "receivers.misses": {"kk": "байланыссыз", "ru": "без связи", "en": "silent"},
    "receivers.down": {"kk": "істен шықты", "ru": "не работает", "en": "down"},
    "receivers.unavailable": {"kk": "Күйі белгісіз", "ru": "Состояние неизвестно", "en": "State unknown"},

    # header
    "role.admin": {"kk": "Әкімші", "ru": "Администратор", "en": "Administrator"},
    "role.operator": {"kk": "Оператор", "ru": "Оператор", "en": "Operator"},
    "role.crew": {"kk": "Экипаж", "ru": "Экипаж", "en": "Crew"},
    "role.auditor": {"kk": "Аудитор", "ru": "Аудитор", "en": "Auditor"},
    "sound": {"kk": "Дыбыс", "ru": "Звук", "en": "Sound"},
    "clock.zone": {"kk": "уақыты", "ru": "время", "en": "time"},
}


def _merge_areas() -> None:
    from web import strings as areas

    for info in sorted(pkgutil.iter_modules(areas.__path__), key=lambda i: i.name):
        table: dict[str, dict[str, str]] = importlib.import_module(f"{areas.__name__}.{info.name}").STRINGS
        twice = STRINGS.keys() & table.keys()
        if twice:
            raise RuntimeError(f"web/strings/{info.name}.py redefines {sorted(twice)}")
        STRINGS.update(table)


_merge_areas()


def t(key: str, lang: str) -> str:
    """The string in `lang` (falling back to Kazakh, then to the key itself)."""
    entry = STRINGS.get(key)
    if entry is None:
        return key
    return entry.get(lang) or entry.get(DEFAULT_LANG) or key


def pick_lang(value: str | None) -> str:
    return value if value in LANGS else DEFAULT_LANG


def strings(lang: str) -> dict[str, str]:
    return {key: t(key, lang) for key in STRINGS}


def javascript() -> str:
    """The table as a script for the pages (`/static/i18n.js`)."""
    table = {lang: strings(lang) for lang in LANGS}
    body = json.dumps(table, ensure_ascii=False, sort_keys=True, indent=1)
    return f'"use strict";\nwindow.KUZET_I18N = {body};\nwindow.KUZET_LANGS = {json.dumps(list(LANGS))};\n'
