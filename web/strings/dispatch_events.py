"""Alarm timeline entries written by dispatch (the alarm event kinds of console.alarm.record_response);
"event.dispatched" and "event.on-site" are the core's."""

STRINGS: dict[str, dict[str, str]] = {
    "event.accepted": {"kk": "Топ қабылдады", "ru": "ГБР приняла вызов", "en": "Crew accepted"},
    "event.en-route": {"kk": "Топ жолда", "ru": "ГБР в пути", "en": "Crew en route"},
    "event.finished": {"kk": "Топ аяқтады", "ru": "ГБР завершила выезд", "en": "Crew finished"},
    "event.recalled": {"kk": "Топ кері шақырылды", "ru": "ГБР отозвана", "en": "Crew recalled"},
    "event.accept-overdue": {"kk": "Топ уақытында қабылдамады", "ru": "ГБР не приняла вызов вовремя",
                             "en": "Crew did not accept in time"},
    "event.arrive-overdue": {"kk": "Топ уақытында жетпеді", "ru": "ГБР не прибыла вовремя",
                             "en": "Crew not on site in time"},
}
