"""The words of the public desk: (zh, en) of every kind, state, closing
reason, error type, step, update frequency and notice."""

__all__ = ["LABELS"]

# (zh, en) of every code the desk shows.
LABELS = {
    "kind": {"request": ("数据需求", "Data request"), "error": ("纠错", "Error report"),
             "comment": ("评论与咨询", "Comment or question")},
    "status": {"new": ("待受理", "New"), "acknowledged": ("已受理", "Acknowledged"),
               "answered": ("已答复", "Answered"), "closed": ("已办结", "Closed")},
    "close_reason": {
        "released": ("已开放（见新数据产品）", "Released (see the new product)"),
        "exists": ("已有该数据", "Already exists"), "partly_released": ("部分开放", "Partly released"),
        "later": ("计划开放", "To be released later"), "elsewhere": ("可从其他渠道获取", "Available elsewhere"),
        "not_suitable": ("不宜开放", "Not suitable for release"),
        "cannot_compile": ("无法汇编", "Cannot be compiled"), "withdrawn": ("提出人已撤回", "Withdrawn by the filer"),
        "corrected": ("已更正", "Corrected"), "not_an_error": ("经核实无误", "Not an error"),
        "answered": ("已答复", "Answered")},
    "error_type": {"wrong_values": ("数据有误", "Wrong values"), "broken_link": ("链接失效", "Broken link"),
                   "out_of_date": ("未及时更新", "Out of date"),
                   "wrong_description": ("描述有误", "Wrong description")},
    "action": {"file": ("提交", "Filed"), "acknowledge": ("受理", "Acknowledged"), "answer": ("答复", "Answer"),
               "extend": ("延期", "Deadline extended"), "transfer": ("转办", "Transferred"),
               "accept": ("确认纠错", "Error report accepted"), "close": ("办结", "Closed"),
               "reopen": ("重新打开", "Reopened"), "remind": ("到期提醒", "Deadline reminder"),
               "notify_email": ("邮件通知", "E-mail notice")},
    "frequency": {"realtime": ("实时", "Real time"), "daily": ("每日", "Daily"), "weekly": ("每周", "Weekly"),
                  "monthly": ("每月", "Monthly"), "quarterly": ("每季度", "Quarterly"),
                  "annual": ("每年", "Annually"), "once": ("一次性", "Once")},
    "event": {"filed": ("新的公众留言待受理", "A new item for your desk"),
              "transferred": ("有留言转办到本部门", "An item was transferred to your department"),
              "reminder": ("留言即将到期", "An item's deadline is near"),
              "acknowledged": ("部门已受理", "The department acknowledged it"),
              "answered": ("部门已答复", "The department answered"),
              "extended": ("答复期限已延长", "The answer deadline was extended"),
              "accepted": ("纠错已被确认", "The error report was accepted"),
              "closed": ("已办结", "It was closed"), "reopened": ("已重新打开", "It was reopened")},
}
