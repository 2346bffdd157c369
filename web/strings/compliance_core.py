"""Strings of the compliance warnings banner on the board (web/static/board-compliance.js)."""

STRINGS: dict[str, dict[str, str]] = {
    "compliance.banner.title": {"kk": "Лицензиялық талаптар", "ru": "Лицензионные требования",
                                "en": "Licensing requirements"},
    "compliance.banner.expiring": {"kk": "{n} құжаттың мерзімі {days} күн ішінде аяқталады",
                                   "ru": "Документов, истекающих в ближайшие {days} дн.: {n}",
                                   "en": "{n} document(s) expire within {days} days"},
    "compliance.banner.expired": {"kk": "{n} құжаттың мерзімі өтіп кеткен", "ru": "Просроченных документов: {n}",
                                  "en": "{n} document(s) have expired"},
    "compliance.banner.personnel": {"kk": "{n} қызметкердің құжаттары назар аударуды қажет етеді",
                                    "ru": "Сотрудников, чьи документы требуют внимания: {n}",
                                    "en": "{n} staff member(s) need attention"},
    "compliance.banner.until": {"kk": "{date} дейін", "ru": "до {date}", "en": "until {date}"},
    "compliance.banner.expired_on": {"kk": "{date} аяқталды", "ru": "истёк {date}", "en": "expired {date}"},
    "compliance.banner.hide": {"kk": "Жасыру", "ru": "Скрыть", "en": "Hide"},
}
