//! Outgoing mail: team invitations, confirmations of addresses for repository notifications
//! (the notifications' own mails are sent by their delivery worker through [`send`]).
//!
//! Delivery is plain SMTP (`EHLO`, `MAIL FROM`, `RCPT TO`, `DATA`) to `MAIL_SERVER:MAIL_PORT`,
//! without STARTTLS or authentication, in a background task; a failure is logged and never
//! fails the request. Whatever happens to the message, the invitation stays in the database and
//! the invited user can see (`GET /api/v1/user/notifications`) and accept it through the API.

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::config::MailConfig;
use crate::service::Ctx;

/// Sends the invitation e-mail in the background (when mail is configured and there is an
/// address).
pub fn send_team_invite(
    ctx: &Ctx,
    to: Option<&str>,
    invitee: &str,
    org: &str,
    team: &str,
    inviter: Option<&str>,
    code: &str,
) {
    let (Some(mail), Some(to)) = (ctx.config.mail.clone(), to.filter(|t| t.contains('@'))) else {
        return;
    };
    let (scheme, host) = match &ctx.config.server_hostname {
        Some(h) => (ctx.config.url_scheme.as_str(), h.clone()),
        None => ("http", ctx.config.listen.to_string()),
    };
    let subject = format!("Invitation to join team: {org}/{team}");
    let body = format!(
        "Hi {invitee},\r\n\r\n{} has invited you to join the team {team} under organization {org}.\r\n\r\n\
         To join, accept the invitation at {scheme}://{host}/confirminvite?code={code}\r\n\
         or through the API: PUT /api/v1/teaminvite/{code}\r\n",
        inviter.unwrap_or("An administrator"),
    );
    let to = to.to_owned();
    tokio::spawn(async move {
        match tokio::time::timeout(Duration::from_secs(30), send(&mail, &to, &subject, &body)).await
        {
            Ok(Ok(())) => tracing::info!(%to, "invitation e-mail sent"),
            Ok(Err(e)) => tracing::warn!(%to, error = %e, "sending the invitation e-mail failed"),
            Err(_) => tracing::warn!(%to, "sending the invitation e-mail timed out"),
        }
    });
}

/// Sends the confirmation link of an address that is to receive a repository's e-mail
/// notifications, in the background (when mail is configured).
pub fn send_repo_email_confirmation(
    ctx: &Ctx,
    to: &str,
    namespace: &str,
    repository: &str,
    link: &str,
) {
    let Some(mail) = ctx.config.mail.clone() else {
        return;
    };
    let subject = format!("E-mail address authorization for repository {namespace}/{repository}");
    let body = format!(
        "Hi,\r\n\r\nThis address has been entered to receive notifications of the repository \
         {namespace}/{repository}.\r\n\r\nTo allow it, open {link}\r\n\r\n\
         If you did not expect this message, ignore it.\r\n"
    );
    let to = to.to_owned();
    tokio::spawn(async move {
        match tokio::time::timeout(Duration::from_secs(30), send(&mail, &to, &subject, &body)).await
        {
            Ok(Ok(())) => tracing::info!(%to, "authorization e-mail sent"),
            Ok(Err(e)) => {
                tracing::warn!(%to, error = %e, "sending the authorization e-mail failed")
            }
            Err(_) => tracing::warn!(%to, "sending the authorization e-mail timed out"),
        }
    });
}

async fn expect(reader: &mut BufReader<TcpStream>, code: &str) -> std::io::Result<()> {
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).await? == 0 {
            return Err(std::io::Error::other(
                "the mail server closed the connection",
            ));
        }
        if !line.starts_with(code) {
            return Err(std::io::Error::other(format!(
                "the mail server answered {:?}, expected {code}",
                line.trim_end()
            )));
        }
        // Multi-line replies continue with `code-`.
        if line.as_bytes().get(3) != Some(&b'-') {
            return Ok(());
        }
    }
}

/// One SMTP transaction.
pub async fn send(mail: &MailConfig, to: &str, subject: &str, body: &str) -> std::io::Result<()> {
    let stream = TcpStream::connect((mail.server.as_str(), mail.port)).await?;
    let mut reader = BufReader::new(stream);
    expect(&mut reader, "220").await?;
    let steps = [
        ("EHLO quayside\r\n".to_owned(), "250"),
        (format!("MAIL FROM:<{}>\r\n", mail.default_sender), "250"),
        (format!("RCPT TO:<{to}>\r\n"), "250"),
        ("DATA\r\n".to_owned(), "354"),
    ];
    for (command, code) in steps {
        reader.get_mut().write_all(command.as_bytes()).await?;
        expect(&mut reader, code).await?;
    }
    // Dot-stuff lines that start with a dot.
    let body = body.replace("\r\n.", "\r\n..");
    let message = format!(
        "From: {}\r\nTo: {to}\r\nSubject: {subject}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n.\r\n",
        mail.default_sender
    );
    reader.get_mut().write_all(message.as_bytes()).await?;
    expect(&mut reader, "250").await?;
    reader.get_mut().write_all(b"QUIT\r\n").await?;
    Ok(())
}
