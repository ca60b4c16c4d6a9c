"""DMARC aggregate (RFC 7489 appendix C) and TLS-RPT (RFC 8460) reports, as a
receiver mails them: the scenarios' and unit tests' input for `mailstack reports`."""
import email.message
import email.utils
import gzip
import json
import time


def aggregate_report(org, report_id, domain, rows, policy="reject"):
    """rows: (source ip, messages, dkim result, spf result); the DMARC result and the
    disposition follow from them as a receiver's would."""
    end = int(time.time())
    records = "".join(f"""
  <record>
    <row>
      <source_ip>{ip}</source_ip>
      <count>{count}</count>
      <policy_evaluated><disposition>{'none' if 'pass' in (dkim, spf) else policy}</disposition><dkim>{dkim}</dkim><spf>{spf}</spf></policy_evaluated>
    </row>
    <identifiers><header_from>{domain}</header_from></identifiers>
    <auth_results>
      <dkim><domain>{domain}</domain><result>{dkim}</result></dkim>
      <spf><domain>{domain}</domain><result>{spf}</result></spf>
    </auth_results>
  </record>""" for ip, count, dkim, spf in rows)
    xml = f"""<?xml version="1.0" encoding="UTF-8" ?>
<feedback>
  <report_metadata>
    <org_name>{org}</org_name>
    <email>dmarc-reports@{org}</email>
    <report_id>{report_id}</report_id>
    <date_range><begin>{end - 86400}</begin><end>{end}</end></date_range>
  </report_metadata>
  <policy_published>
    <domain>{domain}</domain><adkim>r</adkim><aspf>r</aspf><p>{policy}</p><sp>{policy}</sp><pct>100</pct>
  </policy_published>{records}
</feedback>
"""
    return report_mail(org, f"Report domain: {domain} Submitter: {org} Report-ID: {report_id}",
                       gzip.compress(xml.encode()), "application", "gzip",
                       f"{org}!{domain}!{end - 86400}!{end}.xml.gz")


def tls_report(org, report_id, domain, successful, failures):
    """failures: {result type: sessions}."""
    end = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    report = {"organization-name": org, "date-range": {"start-datetime": end, "end-datetime": end},
              "contact-info": f"tls-reports@{org}", "report-id": report_id,
              "policies": [{"policy": {"policy-type": "sts", "policy-domain": domain},
                            "summary": {"total-successful-session-count": successful,
                                        "total-failure-session-count": sum(failures.values())},
                            "failure-details": [{"result-type": what, "failed-session-count": n,
                                                 "receiving-mx-hostname": f"mx1.{domain}"}
                                                for what, n in failures.items()]}]}
    return report_mail(org, f"Report Domain: {domain} Submitter: {org} Report-ID: <{report_id}>",
                       gzip.compress(json.dumps(report).encode()), "application", "tlsrpt+gzip",
                       f"{org}!{domain}!{end}.json.gz", extra={"TLS-Report-Domain": domain,
                                                              "TLS-Report-Submitter": org})


def report_mail(org, subject, payload, maintype, subtype, filename, extra=None):
    m = email.message.EmailMessage()
    m["From"] = f"reports@{org}"
    m["To"] = "postmaster"
    m["Subject"] = subject
    m["Date"] = email.utils.formatdate()
    m["Message-ID"] = email.utils.make_msgid(domain=org)
    for k, v in (extra or {}).items():
        m[k] = v
    m.set_content("This is an aggregate report.")
    m.add_attachment(payload, maintype=maintype, subtype=subtype, filename=filename)
    return bytes(m)
