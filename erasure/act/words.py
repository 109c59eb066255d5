"""The act's and the extract's words, in Russian (the default) and English ([act] language)."""

from __future__ import annotations

from typing import Final

# The reason's legal ground when [act] article is not set: a lawyer should check it
# (README, "The destruction act").
DEFAULT_ARTICLE: Final = {
    "ru": "ст. 14, 20 и 21 Федерального закона от 27.07.2006 № 152-ФЗ «О персональных данных»",
    "en": 'Art. 14, 20 and 21 of Federal Law No. 152-FZ of 27.07.2006 "On Personal Data"',
}

WORDS: Final[dict[str, dict[str, str]]] = {
    "ru": {
        "title": "АКТ об уничтожении персональных данных",
        "extract_title": "Выгрузка из журнала регистрации событий в информационной системе "
        "персональных данных",
        "made_at": "Дата составления акта",
        "scope": "Охват",
        "scope_run": "запуск № {run} журнала erasure",
        "scope_range": "события с {start} по {end} включительно",
        "operator": "Оператор (наименование, адрес)",
        "processor": "Лицо, осуществляющее обработку по поручению оператора (наименование, адрес)",
        "system": "Информационная система персональных данных",
        "subjects": "Субъекты персональных данных",
        "subjects_text": "иная информация, относящаяся к определённым физическим лицам: номера "
        "запросов субъектов ({count})",
        "no_request_id": "(без номера запроса)",
        "categories": "Категории уничтоженных персональных данных",
        "method": "Способ уничтожения",
        "method_text": "удаление профилей через API Altcraft (POST /api/v1.1/profiles/delete), "
        "подтверждённое ответом сервиса",
        "reason": "Причина уничтожения",
        "reason_text": "требование субъекта персональных данных об уничтожении его персональных "
        "данных ({article})",
        "destroyed_at": "Дата уничтожения",
        "count": "Уничтожено профилей (идентификаторов)",
        "sweep_count": "из них повторно, после восстановления из резервной копии",
        "nothing_found": "Уничтожать было нечего (профиль не найден в системе)",
        "nothing_found_text": "по этим запросам сервис сообщил, что профиля нет; они не "
        "включены в число уничтоженных",
        "suppressed": "Сохранено в стоп-листе Altcraft",
        "suppressed_text": "адреса (телефоны) {count} уничтоженных профилей сохранены в "
        "стоп-листе № {list} ([suppress]), чтобы им больше не направлялись рассылки",
        "ledger": "Журнал erasure: вершина цепочки (SEQ:LINK)",
        "plain": "Вершина открытой цепочки SHA-256",
        "commission": "Лица, уничтожившие персональные данные (комиссия)",
        "signature": "подпись",
        "date": "дата",
        "attachment": "Приложение: выгрузка из журнала регистрации событий (один ряд на каждый "
        "уничтоженный профиль).",
        "not_advice": "Документ сформирован программой erasure по данным её журнала и "
        "подписывается людьми; он не является юридической консультацией.",
        # the extract's columns
        "col_request_id": "Номер запроса (иная информация о субъекте)",
        "col_system": "Информационная система",
        "col_categories": "Категории персональных данных",
        "col_destroyed_at": "Дата и время уничтожения",
        "col_reason": "Причина уничтожения",
        "col_event": "Событие журнала erasure (номер)",
        "col_kind": "Вид",
        "kind_erased": "уничтожено",
        "kind_sweep": "уничтожено повторно (после восстановления)",
        "kind_not_found": "уничтожать было нечего",
        "sheet_destroyed": "Уничтожено",
        "sheet_nothing_found": "Уничтожать было нечего",
    },
    "en": {
        "title": "Act of destruction of personal data",
        "extract_title": "Extract from the event log of the personal data information system",
        "made_at": "Date of this act",
        "scope": "Scope",
        "scope_run": "erasure ledger run {run}",
        "scope_range": "events from {start} to {end} inclusive",
        "operator": "Operator (name, address)",
        "processor": "Processor acting on the operator's instructions (name, address)",
        "system": "Personal data information system",
        "subjects": "Data subjects",
        "subjects_text": "other information relating to identified persons: the subjects' "
        "request ids ({count})",
        "no_request_id": "(no request id)",
        "categories": "Categories of personal data destroyed",
        "method": "Method of destruction",
        "method_text": "deletion through the Altcraft API (POST /api/v1.1/profiles/delete), "
        "confirmed by the service's answer",
        "reason": "Reason for destruction",
        "reason_text": "the data subject's request to destroy their personal data ({article})",
        "destroyed_at": "Date of destruction",
        "count": "Profiles (identifiers) destroyed",
        "sweep_count": "of which again, after a restore from backup",
        "nothing_found": "Nothing found to destroy (no such profile in the system)",
        "nothing_found_text": "for these requests the service answered that there was no "
        "profile; they are not counted as destroyed",
        "suppressed": "Kept on an Altcraft suppression list",
        "suppressed_text": "the addresses (phones) of {count} destroyed profiles are kept on "
        "suppression list {list} ([suppress]), so that nothing is sent to them again",
        "ledger": "erasure ledger: chain head (SEQ:LINK)",
        "plain": "Plain SHA-256 chain head",
        "commission": "Persons who destroyed the personal data (commission)",
        "signature": "signature",
        "date": "date",
        "attachment": "Attachment: the extract from the event log (one row per profile destroyed).",
        "not_advice": "Made by erasure from its ledger, for people to sign; it is not legal "
        "advice.",
        "col_request_id": "Request id (other information relating to the subject)",
        "col_system": "Information system",
        "col_categories": "Categories of personal data",
        "col_destroyed_at": "Date and time of destruction",
        "col_reason": "Reason for destruction",
        "col_event": "erasure ledger event (seq)",
        "col_kind": "Kind",
        "kind_erased": "destroyed",
        "kind_sweep": "destroyed again (after a restore)",
        "kind_not_found": "nothing found to destroy",
        "sheet_destroyed": "Destroyed",
        "sheet_nothing_found": "Nothing found to destroy",
    },
}
