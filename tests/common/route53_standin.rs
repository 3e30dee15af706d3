//! A stand-in for the Route 53 operations moto lacks or cannot vary: it serves
//! `GetHealthCheckStatus` with the checker observations a test chooses, over
//! real HTTP on a loopback port, so the real Route 53 client and adapter parse
//! a real AWS-shaped response.

use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

pub struct Route53StandIn {
    pub endpoint: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Route53StandIn {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn status_xml(statuses: &[String]) -> String {
    let observations: String = statuses
        .iter()
        .enumerate()
        .map(|(i, s)| {
            format!(
                "<HealthCheckObservation><Region>us-east-1</Region><IPAddress>15.177.2.{i}</IPAddress>\
                 <StatusReport><Status>{s}</Status><CheckedTime>2026-11-21T09:00:0{i}.000Z</CheckedTime></StatusReport>\
                 </HealthCheckObservation>"
            )
        })
        .collect();
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<GetHealthCheckStatusResponse xmlns=\"https://route53.amazonaws.com/doc/2013-04-01/\">\
         <HealthCheckObservations>{observations}</HealthCheckObservations></GetHealthCheckStatusResponse>"
    )
}

impl Route53StandIn {
    /// Answers every GetHealthCheckStatus with one observation per status line
    /// (Route 53 writes `Success: ...` or `Failure: ...`).
    pub async fn start(statuses: &[&str]) -> Route53StandIn {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let body = Arc::new(status_xml(
            &statuses.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>(),
        ));
        let task = tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let body = body.clone();
                tokio::spawn(async move {
                    let mut request = Vec::new();
                    let mut buf = [0u8; 4096];
                    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => request.extend_from_slice(&buf[..n]),
                        }
                    }
                    let head = String::from_utf8_lossy(&request);
                    let (status, body) = if head.starts_with("GET /2013-04-01/healthcheck/")
                        && head.contains("/status")
                    {
                        ("200 OK", body.as_str().to_owned())
                    } else {
                        ("400 Bad Request", "<ErrorResponse><Error><Code>InvalidInput</Code><Message>stand-in serves GetHealthCheckStatus only</Message></Error></ErrorResponse>".to_owned())
                    };
                    let response = format!(
                        "HTTP/1.1 {status}\r\nContent-Type: text/xml\r\nContent-Length: {}\r\nx-amzn-RequestId: standin\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = stream.write_all(response.as_bytes()).await;
                    let _ = stream.shutdown().await;
                });
            }
        });
        Route53StandIn { endpoint, task }
    }
}
